"""Same cookies, same answers, same stats: one scripted scenario run through the WSGI adapter and
then through the ASGI adapter, each on fresh stores, and the two transcripts compared.

The scenario walks every case of the core issue: a new visitor, the same session, a JSON answer and a
404, a page view, Redis forgetting the session (expired session, same visitor), a second visitor,
forged cookies, a crawler, excluded requests, bad track requests and a CORS preflight. Compared are
what a browser and the dashboard see: statuses, media types, ``Set-Cookie`` attribute sets (not the
random values), JSON bodies with the random ids masked, CORS headers, and after the drain the
MongoDB and Redis counts.
"""

from __future__ import annotations

from typing import Any

from footfall.stores.redis_sessions import STREAM_KEY, session_key

GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
ORIGIN = "https://shop.example"  # the ``settings`` fixture's CORS origin
RANDOM_IDS = ("visitor_id", "session_id")
SHOWN_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods",
                 "allow", "vary")


def masked(body: Any) -> Any:
    if isinstance(body, dict):
        return {key: ("<id>" if key in RANDOM_IDS and value else value) for key, value in body.items()}
    return body


def transcript_entry(label: str, response: Any, cookies_of: Any) -> dict[str, Any]:
    """What a browser sees of one response, without the random parts."""
    media_type = response.headers.get("content-type", "").split(";")[0]
    if not response.content:
        # no body, no type to compare: Werkzeug labels the WSGI adapter's empty 204 preflight answer
        # text/plain, the ASGI adapter sends no Content-Type (a difference in wsgi.py, reported)
        media_type = None
    return {
        "step": label,
        "status": response.status_code,
        "media_type": media_type,
        # Expires is Max-Age from the wall clock at the moment of the response: its presence is compared
        "cookies": {name: {**attributes, "expires": "expires" in attributes}
                    for name, (_, attributes) in cookies_of(response).items()},
        "body": masked(response.json()) if media_type == "application/json" else response.content,
        "headers": {name: response.headers[name] for name in SHOWN_HEADERS if name in response.headers},
    }


def run_scenario(site, redis_client, clock, cookies_of) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []

    def step(label: str, response: Any) -> None:
        steps.append(transcript_entry(label, response, cookies_of))

    browser = site.client
    step("new visitor", browser.get("/whoami", headers={"Referer": "https://search.example/"}))
    clock.advance(60)
    step("same session, HTML", browser.get("/page/two"))
    step("same session, JSON", browser.get("/api/data"))
    step("same session, 404 from the app", browser.get("/nowhere"))
    step("page view event", site.track({"eventType": "page_view", "path": "/two",
                                        "event_id": "6f1c7a52-2f4e-4c39-9f0e-2d7b8f6e1a01"}))
    redis_client.delete(session_key(site.last_visit.session_id))
    clock.advance(60)
    step("expired session, same visitor", browser.get("/whoami"))

    second = site.new_client()
    step("second visitor", second.get("/whoami"))
    step("second visitor's page view", site.track({"eventType": "page_view", "path": "/x"}, client=second,
                                                  headers={"Origin": ORIGIN}))

    jar = site.jar()
    forged = {name: value[:-2] + ("AA" if not value.endswith("AA") else "BB") for name, value in jar.items()}
    step("forged cookies", site.new_client().get(
        "/whoami", headers={"Cookie": "; ".join(f"{name}={value}" for name, value in forged.items())}))
    step("garbage cookies", site.new_client().get("/whoami", headers={"Cookie": "session=a.b.c; visitor_id=...."}))

    crawler = site.new_client(GOOGLEBOT_UA)
    step("crawler page", crawler.get("/whoami"))
    step("crawler page view", site.track({"eventType": "page_view", "path": "/x"}, client=crawler))
    step("no User-Agent", site.new_client(None).get("/whoami"))

    step("excluded path", browser.get("/static/app.css"))
    step("excluded favicon", browser.get("/favicon.ico"))
    step("HEAD", browser.head("/"))
    step("bad event", site.track(b"{not json", headers={"Origin": ORIGIN}))
    step("bad custom event", site.track({"eventType": "purchase", "path": "/x", "props": {"items": [1]}}))
    step("oversized event", site.track(b"{" + b" " * 20_000 + b"}"))
    step("wrong method", browser.get("/analytics/track"))
    step("preflight", browser.options("/analytics/track", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST"}))
    step("preflight from elsewhere", browser.options("/analytics/track", headers={"Origin": "https://evil.example"}))
    step("back again, same session", browser.get("/whoami"))
    return steps


def stats(redis_client, mongo_db, queued, drain) -> dict[str, Any]:
    """What the dashboard would count, and what Redis holds, once the queue is written."""
    waiting = queued()
    handled = drain()
    sessions = list(mongo_db.sessions.find())
    return {
        "queued": waiting,
        "drained": handled,
        "sessions": len(sessions),
        "distinct visitors": len({s["visitor_id"] for s in sessions}),
        "session page views": sorted(s["page_views"] for s in sessions),
        "entry paths": sorted(s.get("entry_path") or "" for s in sessions),
        "referrers": sorted(s["referrer"] for s in sessions),
        "page views": sorted(v["path"] for v in mongo_db.page_views.find()),
        "visitors": mongo_db.visitors.count_documents({}),
        "visitor numbers": sorted(v.get("visitor_number") or 0 for v in mongo_db.visitors.find()),
        "active sessions in Redis": len(redis_client.keys("footfall:session:*")),
        "counters": {k.decode(): int(v) for k, v in redis_client.hgetall("footfall:counters").items()},
    }


def forget_everything(redis_client, mongo_db) -> None:
    """Fresh stores for the next run: every Redis key but the (empty) stream, which keeps the
    ``drain`` fixture's consumer group, and every MongoDB collection."""
    assert redis_client.xlen(STREAM_KEY) == 0
    for key in redis_client.keys("*"):
        if key != STREAM_KEY.encode():
            redis_client.delete(key)
    for name in mongo_db.list_collection_names():
        mongo_db.drop_collection(name)


def test_both_adapters_give_the_same_cookies_answers_and_stats(build_site, redis_client, mongo_db, clock,
                                                               cookies_of, queued, drain) -> None:
    runs: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
    for adapter in ("wsgi", "asgi"):
        site = build_site(adapter)
        transcript = run_scenario(site, redis_client, clock, cookies_of)
        site.close()
        runs[adapter] = (transcript, stats(redis_client, mongo_db, queued, drain))
        forget_everything(redis_client, mongo_db)

    (wsgi_steps, wsgi_stats), (asgi_steps, asgi_stats) = runs["wsgi"], runs["asgi"]
    assert [s["step"] for s in wsgi_steps] == [s["step"] for s in asgi_steps]
    for wsgi_step, asgi_step in zip(wsgi_steps, asgi_steps, strict=True):
        assert asgi_step == wsgi_step, wsgi_step["step"]
    assert asgi_stats == wsgi_stats

    # and both are right, not merely alike
    by_step = {s["step"]: s for s in wsgi_steps}
    assert by_step["new visitor"]["body"] == {"visitor_id": "<id>", "session_id": "<id>",
                                              "is_new_visitor": True, "is_new_session": True}
    assert by_step["expired session, same visitor"]["body"]["is_new_visitor"] is False
    assert set(by_step["expired session, same visitor"]["cookies"]) == {"session", "visitor_id"}
    assert set(by_step["same session, 404 from the app"]["cookies"]) == {"session"}
    assert by_step["same session, 404 from the app"]["status"] == 404
    assert by_step["second visitor's page view"]["body"] == {"status": "recorded", "visitor_number": 2,
                                                            "visitor_label": "#0002"}
    assert by_step["forged cookies"]["body"]["is_new_visitor"] is True
    assert by_step["crawler page"]["body"] == {"visit": None} and by_step["crawler page"]["cookies"] == {}
    assert by_step["crawler page view"]["body"]["status"] == "ignored"
    assert [by_step[s]["status"] for s in ("bad event", "bad custom event", "oversized event", "wrong method",
                                           "preflight", "preflight from elsewhere")] == [400, 400, 413, 405, 204, 403]
    assert by_step["back again, same session"]["body"]["is_new_session"] is False
    session_cookie = by_step["new visitor"]["cookies"]["session"]
    assert session_cookie == {"httponly": "", "max-age": "1800", "path": "/", "samesite": "Lax", "expires": True}
    assert by_step["new visitor"]["cookies"]["visitor_id"]["max-age"] == "31536000"
    assert wsgi_stats["sessions"] == 5, "first visit, expired-and-new, second, forged, garbage"
    assert wsgi_stats["distinct visitors"] == wsgi_stats["visitors"] == 4
    assert wsgi_stats["visitor numbers"] == [1, 2, 3, 4]
    assert wsgi_stats["page views"] == ["/two", "/x"]
    assert wsgi_stats["active sessions in Redis"] == 4, "the forgotten one is gone"
