"""HandledEvents: waiting for exactly the events seen committed, whatever order they come in."""

from __future__ import annotations

import asyncio

from contact_center.progress import HandledEvents


async def test_a_newer_id_first_does_not_release_a_wait_for_an_older_one():
    handled = HandledEvents()
    handled.add([52])  # committed first although its id was taken later
    waiter = asyncio.create_task(handled.wait([50, 51, 52]))
    await asyncio.sleep(0)
    assert not waiter.done()
    handled.add([50])
    await asyncio.sleep(0)
    assert not waiter.done()
    handled.add([51])
    await asyncio.wait_for(waiter, 1)
    assert 50 in handled and 53 not in handled and "50" not in handled


async def test_what_a_load_read_counts_as_applied():
    handled = HandledEvents()
    handled.add([3, 9])
    handled.loaded(7)
    assert all(i in handled for i in range(1, 8)) and 9 in handled and 8 not in handled
    await asyncio.wait_for(handled.wait(range(1, 8)), 1)


async def test_the_window_bounds_memory_and_counts_older_ids_as_applied():
    handled = HandledEvents(window=10)
    handled.add(range(100, 120))  # twice the window: all kept
    assert handled.through == 0 and len(handled._ids) == 20
    handled.add([120])  # one more: the older ones go, the newest window stays
    assert handled.through == 110 and len(handled._ids) == 10
    assert 5 in handled and 110 in handled  # older than the window: taken as applied
    assert 121 not in handled
    handled.add([121])  # no pass over the set for each event after that
    assert handled.through == 110 and len(handled._ids) == 11


async def test_a_waiter_wakes_for_each_batch():
    handled = HandledEvents()
    waiter = asyncio.create_task(handled.wait([1, 2]))
    for batch in ([1], [2]):
        await asyncio.sleep(0)
        assert not waiter.done()
        handled.add(batch)
    await asyncio.wait_for(waiter, 1)
