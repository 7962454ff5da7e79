"""Schemathesis hooks for kujira's API test (tests/tests/api_schemathesis.rs).

The OpenAPI document states in words a few rules that JSON Schema cannot express,
and answers 422 to a request that breaks them:

* a preferred consultation date must lie in the future and at least
  KUJIRA_INQUIRY_LEAD_DAYS days ahead (counted in the city's calendar), and the
  three preferred dates must differ;
* an Idempotency-Key already used with another body is refused (the rule depends on
  the requests sent before, which no schema can see).

Schemathesis generates positive cases from the schema alone, so it cannot know
those rules. These hooks tell it, for *positive* cases only: `filter_case` drops the
ones with dates that break the date rules (with a day of margin around the lead
time, which only costs a few generated cases), and `map_case` makes each positive
case's Idempotency-Key its own by appending a digest of the body, so that the same
body still replays under the same key while another body never meets a key it did
not make. Every check stays on, and negative cases are left as generated.

The test passes the app's clock and lead time in KUJIRA_TEST_NOW (RFC 3339) and
KUJIRA_TEST_LEAD_DAYS, and runs the app in Asia/Tokyo (UTC+09:00, no daylight
saving time since 1951; dates that old are dropped as past anyway).
"""

import hashlib
import json
import os
from datetime import datetime, timedelta, timezone

import schemathesis
from schemathesis import GenerationMode

NOW = datetime.fromisoformat(os.environ["KUJIRA_TEST_NOW"].replace("Z", "+00:00"))
LEAD = timedelta(days=int(os.environ["KUJIRA_TEST_LEAD_DAYS"]))
CITY = timezone(timedelta(hours=9))
DATE_FIELDS = ("preferred_date_1", "preferred_date_2", "preferred_date_3")


def _instant(text):
    """The instant a preferred date names, or None when Python cannot read it."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None  # year 0000 and the like: long past
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=CITY)
    return parsed


def _dates_follow_the_rules(body):
    seen = []
    for field in DATE_FIELDS:
        value = body.get(field)
        if not isinstance(value, str) or value == "":
            continue
        instant = _instant(value)
        if instant is None or instant < NOW + LEAD + timedelta(days=1):
            return False
        if instant in seen:
            return False
        seen.append(instant)
    return True


@schemathesis.hook
def filter_case(context, case):
    if not _positive(case):
        return True
    if context.operation is None or context.operation.path != "/api/v1/inquiries":
        return True
    if not isinstance(case.body, dict):
        return True
    return _dates_follow_the_rules(case.body)


def _positive(case):
    meta = case.meta
    return meta is not None and meta.generation.mode == GenerationMode.POSITIVE


@schemathesis.hook
def map_case(context, case):
    if not _positive(case) or not case.headers:
        return case
    for name in list(case.headers):
        if name.lower() != "idempotency-key":
            continue
        key = case.headers[name]
        if not isinstance(key, str):
            continue
        body = json.dumps(case.body, sort_keys=True, ensure_ascii=True, default=str)
        digest = hashlib.sha256(body.encode()).hexdigest()[:40]
        # Still 1 to 200 visible ASCII characters, as the schema says.
        case.headers[name] = (key + "-" + digest)[-200:]
    return case
