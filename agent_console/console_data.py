"""What the console page starts from: its words (English, Chinese), canned responses, and the
directory of people and queues a user may hand a ticket to."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from tickets.actions._common import QUEUE, USER
from tickets.domain import Role
from tickets.queries import Viewer

__all__ = ["CANNED", "CONSOLE_TEXT", "directory"]

CONSOLE_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "connecting": "Connecting…", "live": "Live", "offline": "Reconnecting…",
        "presence": "Presence", "available": "Available", "busy": "Busy", "away": "Away",
        "offline_p": "Offline", "wrap_up": "Wrap-up", "offers": "Incoming",
        "accept": "Accept (A)", "reject": "Reject (R)", "expires": "{s} s left",
        "tickets": "My conversations", "none": "No conversations. Go available to get offers.",
        "pick": "Pick a conversation.", "reply": "Reply", "note": "Internal note",
        "send": "Send (Ctrl+Enter)", "canned": "Canned response…", "status": "Status",
        "priority": "Priority", "transfer": "Transfer…", "to_queue": "Queue: {name}",
        "to_agent": "Agent: {name}", "release": "Back to the queue", "customer": "Customer",
        "history": "All tickets", "handles": "Reached at", "sla_due": "SLA {t}",
        "sla_breached": "SLA breached {t} ago", "sla_none": "No SLA clock", "typing": "typing…",
        "read": "Read", "left": "The customer left the chat.", "abandoned": "The customer left.",
        "you": "You", "saved": "Saved.", "error": "Failed: {why}", "load": "Load",
        "logout": "Log out", "wallboard": "Wallboard", "new": "new", "open": "open",
        "pending": "pending", "solved": "solved", "closed": "closed", "files": "Files",
        "via": "via {channel}", "internal": "note",
    },
    "zh": {
        "connecting": "连接中…", "live": "在线", "offline": "正在重新连接…",
        "presence": "状态", "available": "空闲", "busy": "忙碌", "away": "离开",
        "offline_p": "离线", "wrap_up": "整理中", "offers": "新会话",
        "accept": "接受 (A)", "reject": "拒绝 (R)", "expires": "剩余 {s} 秒",
        "tickets": "我的会话", "none": "没有会话。设为空闲即可接收新会话。",
        "pick": "请选择一个会话。", "reply": "回复", "note": "内部备注",
        "send": "发送 (Ctrl+Enter)", "canned": "快捷回复…", "status": "工单状态",
        "priority": "优先级", "transfer": "转交…", "to_queue": "队列：{name}",
        "to_agent": "坐席：{name}", "release": "退回队列", "customer": "客户",
        "history": "全部工单", "handles": "联系方式", "sla_due": "SLA 剩余 {t}",
        "sla_breached": "SLA 已超时 {t}", "sla_none": "无 SLA 计时", "typing": "正在输入…",
        "read": "已读", "left": "客户已离开对话。", "abandoned": "客户已离开。",
        "you": "我", "saved": "已保存。", "error": "失败：{why}", "load": "负载",
        "logout": "退出", "wallboard": "实时看板", "new": "新建", "open": "处理中",
        "pending": "待回复", "solved": "已解决", "closed": "已关闭", "files": "文件",
        "via": "渠道：{channel}", "internal": "备注",
    },
}  # fmt: skip

CANNED: dict[str, list[dict[str, str]]] = {
    "en": [
        {"title": "Greeting",
         "body": "Hi {customer_name}, this is {agent_name}. How can I help you today?"},
        {"title": "Looking into it",
         "body": "Thanks, {customer_name}. I am looking into ticket #{ticket_number} now."},
        {"title": "Anything else", "body": "Is there anything else I can help you with?"},
        {"title": "Closing",
         "body": "Thank you for contacting us, {customer_name}. Have a great day! — {agent_name}"},
    ],
    "zh": [
        {"title": "问候", "body": "{customer_name}您好，我是{agent_name}，请问有什么可以帮您？"},
        {"title": "正在处理", "body": "谢谢{customer_name}，我正在处理工单 #{ticket_number}。"},
        {"title": "还有别的吗", "body": "请问还有其他可以帮您的吗？"},
        {"title": "结束语", "body": "感谢您的联系，{customer_name}，祝您愉快！——{agent_name}"},
    ],
}  # fmt: skip
"""Placeholders: ``{customer_name}``, ``{agent_name}``, ``{ticket_number}`` (filled in the
browser from the open ticket; an unknown one stays as written)."""


def directory(session: Connection, viewer: Viewer) -> dict[str, Any]:
    """Who and where this user may transfer to: a supervisor their team's active agents and
    queues, an admin everyone; an agent only sees their queues (agents cannot transfer)."""
    u, q = USER.c, QUEUE.c
    agents = sa.select(u.id, u.name, u.presence).where(u.active.is_(True),
                                                       u.role == Role.AGENT.value)  # fmt: skip
    queues = sa.select(q.id, q.name)
    if viewer.role is Role.SUPERVISOR:
        agents = agents.where(u.team_id == viewer.team_id)
        queues = queues.where(q.team_id == viewer.team_id)
    elif viewer.role is Role.AGENT:
        agents = agents.where(sa.false())
        queues = queues.where(q.id.in_(sorted(viewer.queue_ids)))
    return {
        "agents": [{"id": r.id, "name": r.name, "presence": r.presence}
                   for r in session.execute(agents.order_by(u.name))],
        "queues": [{"id": r.id, "name": r.name} for r in session.execute(queues.order_by(q.name))],
        "can_transfer": viewer.role is not Role.AGENT,
    }  # fmt: skip
