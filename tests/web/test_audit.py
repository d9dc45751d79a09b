"""The audit log: exports, role changes (old and new values) and webhook deletions are recorded;
the log itself is read-only over the API."""

from __future__ import annotations

import pytest

from tests.conftest import count


async def _audit(client, world, action: str) -> list[dict]:
    r = await client.get(f"/api/v1/audit?action={action}", headers=world.auth("admin"))
    assert r.status == 200
    return (await r.json())["items"]


async def test_a_csv_export_writes_an_audit_row(client, world):
    url = "/api/v1/reports/sla.csv?start=2026-03-01&end=2026-03-02&group_by=queue"
    r = await client.get(url, headers=world.auth("supervisor"))
    assert r.status == 200 and r.content_type == "text/csv"
    (entry,) = await _audit(client, world, "report.export")
    assert entry["actor_user_id"] == world.users["supervisor"]["id"]
    assert entry["target_type"] == "report"
    detail = entry["detail"]
    assert detail["report"] == "sla.csv"
    assert (detail["start"], detail["end"], detail["group_by"]) == ("2026-03-01", "2026-03-02",
                                                                    ["queue"])  # fmt: skip
    assert detail["team_id"] == world.teams["red"]  # a supervisor's export is their team's
    assert detail["rows"] == len((await r.text()).splitlines()) - 1
    r = await client.get("/api/v1/reports/sla.csv?start=2026-03-01&end=2026-03-02",
                         headers=world.auth("admin"))  # fmt: skip
    assert r.status == 200
    newest = (await _audit(client, world, "report.export"))[0]
    assert (newest["actor_user_id"], newest["detail"]["team_id"]) == (
        world.users["admin"]["id"], None)  # fmt: skip


async def test_a_refused_export_writes_no_audit_row(client, world):
    bad = "/api/v1/reports/sla.csv?start=2026-03-02&end=2026-03-01"
    assert (await client.get(bad, headers=world.auth("admin"))).status == 400
    assert (await client.get(bad.replace("2026-03-01", "2026-03-03"),
                             headers=world.auth("agent"))).status == 403  # fmt: skip
    assert await _audit(client, world, "report.export") == []


async def test_a_role_change_records_the_old_and_the_new_role(client, world):
    agent = world.users["agent2"]
    r = await client.patch(f"/api/v1/users/{agent['id']}", json={"role": "supervisor"},
                           headers=world.auth("admin"))  # fmt: skip
    assert r.status == 200
    (entry,) = await _audit(client, world, "user.update")
    assert (entry["actor_user_id"], entry["target_id"]) == (world.users["admin"]["id"],
                                                            agent["id"])  # fmt: skip
    assert entry["detail"]["changes"] == {"role": ["agent", "supervisor"]}
    assert "role" in entry["detail"]["fields"]


async def test_team_active_skills_and_queue_changes_record_old_and_new(client, world):
    agent = world.users["agent"]
    body = {"team_id": world.teams["blue"], "active": False, "skills": {"billing": 5, "tech": 2},
            "queue_ids": [world.queues["tech"]], "name": agent["name"],
            "password": "another horse battery"}  # fmt: skip
    r = await client.patch(f"/api/v1/users/{agent['id']}", json=body, headers=world.auth("admin"))
    assert r.status == 200
    (entry,) = await _audit(client, world, "user.update")
    assert entry["detail"]["changes"] == {
        "team_id": [world.teams["red"], world.teams["blue"]],
        "active": [True, False],
        "skills": [{"billing": 3}, {"billing": 5, "tech": 2}],
        "queue_ids": [sorted([world.queues["general"], world.queues["billing"]]),
                      [world.queues["tech"]]],
    }  # fmt: skip
    # the unchanged name is no change; the password is named but its value never recorded
    assert "password" in entry["detail"]["fields"]
    assert "another horse" not in str(entry)


async def test_deleting_a_webhook_writes_webhook_delete(client, world):
    r = await client.post("/api/v1/webhooks", headers=world.auth("admin"),
                          json={"url": "http://127.0.0.1:9/hook", "event_types": ["*"],
                                "allow_private": True})  # fmt: skip
    sub = (await r.json())["id"]
    r = await client.delete(f"/api/v1/webhooks/{sub}", headers=world.auth("admin"))
    assert r.status == 200
    (entry,) = await _audit(client, world, "webhook.delete")
    assert (entry["actor_user_id"], entry["target_type"], entry["target_id"]) == (
        world.users["admin"]["id"], "webhook", sub)  # fmt: skip


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE", "POST"])
@pytest.mark.parametrize("path", ["/api/v1/audit", "/api/v1/audit/1"])
async def test_the_audit_log_cannot_be_edited_through_the_api(client, world, method, path):
    before = count(world.svc.db, "auditlog")
    assert before > 0
    r = await client.request(method, path, json={"action": "forged"}, headers=world.auth("admin"))
    assert r.status in (404, 405)
    assert (await r.json())["error"]["code"] in ("not_found", "method_not_allowed")
    assert count(world.svc.db, "auditlog") == before
