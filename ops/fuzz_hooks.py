"""Schemathesis hooks for ops/fuzz-api: a check that a refused request leaves the ledger as it was.

The fuzzer runs one worker, so the log's size (GET /v1/log) changes only through the requests it sends:
a response of 400 or more to any request must find the size it found after the previous response.
"""
import json
import os
import urllib.request

import schemathesis

BASE = os.environ["FUZZ_BASE_URL"]
_last = {"size": None}


def _size() -> int:
    with urllib.request.urlopen(BASE + "/v1/log", timeout=10) as r:
        return json.load(r)["size"]


@schemathesis.check
def refused_requests_append_nothing(ctx, response, case):
    size = _size()
    before = _last["size"]
    _last["size"] = size
    if before is not None and response.status_code >= 400 and size != before:
        raise AssertionError(
            f"{case.method} {case.path} answered {response.status_code} but the log grew from {before} to {size} entries")
    return None
