"""Takes values it cannot be sent, by id: usage: unsendable.py LIST DICT QUEUE HOST PORT KEYHEX.

A Rust client filled the list, the dict (under 'k') and the queue with values whose pickle is
larger than the node's frame limit. Every way of taking one (`pop()`, `pop(-2)`, `pop(0)`,
`pop('k')`, `popitem()`, `get_nowait()`) must fail with the node's reason; the Rust client
then checks that nothing was lost. Prints one line per refusal, then `OK`.
"""

import multiprocessing.managers as mm

import by_id

(l_id, d_id, q_id), proxy = by_id.connect(3)

l = proxy(mm.ListProxy, "list", l_id)
d = proxy(mm.DictProxy, "dict", d_id)
q = proxy(mm.AutoProxy, "Queue", q_id, exposed=("get_nowait",))
takes = [
    ("list.pop()", lambda: l.pop()),
    ("list.pop(-2)", lambda: l.pop(-2)),
    ("list.pop(0)", lambda: l.pop(0)),
    ("dict.pop('k')", lambda: d.pop("k")),
    ("dict.popitem()", lambda: d.popitem()),
    ("queue.get_nowait()", lambda: q.get_nowait()),
]
for name, take in takes:
    try:
        got = take()
    except Exception as e:  # the node's reason, as the client raises it
        assert "frame" in str(e), f"{name}: {type(e).__name__}: {e}"
        print(f"{name}: {type(e).__name__}", flush=True)
    else:
        raise AssertionError(f"{name} returned {type(got).__name__} of {len(got)}")
print("OK", flush=True)
