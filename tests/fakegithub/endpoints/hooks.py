"""The App's webhook deliveries: list (cursor-paginated), one, redeliver.

https://docs.github.com/rest/apps/webhooks
"""

from __future__ import annotations

from tests.fakegithub import payloads
from tests.fakegithub.models import Delivery
from tests.fakegithub.routing import ApiError, Ctx, Reply, not_found, route
from tests.fakegithub.state import iso


def _find(ctx: Ctx) -> Delivery:
    wanted = int(ctx.params["delivery_id"])
    for d in ctx.state.deliveries:
        if d.id == wanted:
            return d
    raise not_found()


@route("GET", "/app/hook/deliveries", auth="app")
def list_deliveries(ctx: Ctx) -> Reply:
    # Newest first; the cursor is opaque to clients ("v1_<id>" here), and only
    # rel="next" is sent, as GitHub does for this endpoint.
    items = sorted(ctx.state.deliveries, key=lambda d: d.id, reverse=True)
    status = ctx.query.get("status")
    if status == "success":
        items = [d for d in items if 200 <= d.status_code < 300]
    elif status == "failure":
        items = [d for d in items if not 200 <= d.status_code < 300]
    cursor = ctx.query.get("cursor")
    if cursor:
        try:
            start_id = int(cursor.removeprefix("v1_"))
        except ValueError:
            raise ApiError(400, "Invalid cursor") from None
        items = [d for d in items if d.id <= start_id]
    per_page = min(max(ctx.int_query("per_page", 30), 1), 100)
    chunk, rest = items[:per_page], items[per_page:]
    headers = {}
    if rest:
        headers["Link"] = (
            f'<{ctx.url_with(per_page=per_page, cursor=f"v1_{rest[0].id}")}>; rel="next"'
        )
    return Reply(body=[payloads.delivery_json(d, full=False) for d in chunk], headers=headers)


@route("GET", "/app/hook/deliveries/{delivery_id}", auth="app")
def get_delivery(ctx: Ctx) -> Reply:
    return Reply(body=payloads.delivery_json(_find(ctx), full=True))


@route("POST", "/app/hook/deliveries/{delivery_id}/attempts", auth="app")
def redeliver(ctx: Ctx) -> Reply:
    original = _find(ctx)
    ctx.state.redelivery_requests.append(original.id)
    # GitHub redelivers asynchronously; the fake records the outcome at once.
    ctx.state.deliveries.append(
        Delivery(
            id=ctx.state.next_delivery_id(),
            guid=original.guid,
            event=original.event,
            action=original.action,
            status_code=ctx.state.redelivery_status_code,
            redelivery=True,
            installation_id=original.installation_id,
            repository_id=original.repository_id,
            delivered_at=iso(),
            payload=original.payload,
        )
    )
    return Reply(202, {})
