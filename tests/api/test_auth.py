"""Access control: deny by default, roles, queue scopes, hashed tokens, websocket authentication."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from conveyor import Conveyor
from conveyor.api import ApiConfig, TokenError, TokenStore
from conveyor.api.tokens import api_tokens_key
from conveyor.config.errors import ConfigError
from tests.api.conftest import Api, StartApi, code_of

ADD = 'mutation { addJob(queueName: "background", type: "ok") { id } }'
QUEUES = "{ queues { name } }"


async def test_request_without_token_is_refused(api: Api) -> None:
    response = await api.post({"query": QUEUES}, token=None)
    assert response.status_code == 401
    assert code_of(response.json()) == "UNAUTHENTICATED"


async def test_unknown_token_is_refused(api: Api) -> None:
    response = await api.post({"query": QUEUES}, token="cvy_0123456789abcdef_" + "x" * 43)
    assert response.status_code == 401
    assert code_of(response.json()) == "UNAUTHENTICATED"


async def test_non_bearer_authorization_is_refused(api: Api) -> None:
    response = await api.post({"query": QUEUES}, token=None, headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    assert response.status_code == 401


async def test_revoked_token_is_refused(api: Api) -> None:
    store = TokenStore(api.app.client, api.app.settings.conveyor_prefix)
    assert (await api.post({"query": QUEUES}, token="viewer")).status_code == 200
    assert await store.revoke(api.tokens["viewer"])
    assert (await api.post({"query": QUEUES}, token="viewer")).status_code == 401


async def test_viewer_reads_but_cannot_enqueue(api: Api, api_app: Conveyor) -> None:
    assert len((await api.data(QUEUES, token="viewer"))["queues"]) == 3
    result = await api.gql(ADD, token="viewer")
    assert code_of(result) == "FORBIDDEN"
    assert (await api_app.queue("background").counts()).pending == 0


async def test_operator_enqueues_pauses_and_retries_but_cannot_clear(api: Api, api_app: Conveyor) -> None:
    await api.data(ADD, token="operator")
    await api.data('mutation { pauseQueue(name: "background") }', token="operator")
    await api.data('mutation { resumeQueue(name: "background") }', token="operator")
    result = await api.gql('mutation { clearQueue(name: "background") }', token="operator")
    assert code_of(result) == "FORBIDDEN"
    assert (await api_app.queue("background").counts()).pending == 1


async def test_operator_cannot_manage_tokens(api: Api) -> None:
    assert code_of(await api.gql("{ apiTokens { id } }", token="operator")) == "FORBIDDEN"
    create = 'mutation { createApiToken(name: "x", role: ADMIN) { token } }'
    assert code_of(await api.gql(create, token="operator")) == "FORBIDDEN"


async def test_admin_clears_queues_and_manages_tokens(api: Api, api_app: Conveyor) -> None:
    await api.data(ADD)
    assert (await api.data('mutation { clearQueue(name: "background") }'))["clearQueue"] is True
    assert (await api_app.queue("background").counts()).pending == 0
    create = 'mutation { createApiToken(name: "ci", role: VIEWER, queues: ["indexing"]) { token info { id } } }'
    created = await api.data(create)
    token = created["createApiToken"]["token"]
    listed = await api.data("{ apiTokens { id name role queues } }")
    entry = {"id": created["createApiToken"]["info"]["id"], "name": "ci", "role": "VIEWER", "queues": ["indexing"]}
    assert entry in listed["apiTokens"]
    assert [q["name"] for q in (await api.data(QUEUES, token=token))["queues"]] == ["indexing"]
    revoke = "mutation($id: ID!) { revokeApiToken(id: $id) }"
    assert (await api.data(revoke, {"id": created["createApiToken"]["info"]["id"]}))["revokeApiToken"] is True
    assert (await api.post({"query": QUEUES}, token=token)).status_code == 401


async def test_queue_scoped_token_sees_and_touches_only_its_queues(api: Api, api_app: Conveyor) -> None:
    store = TokenStore(api_app.client, api_app.settings.conveyor_prefix)
    token = (await store.create("indexer", "operator", ["indexing"])).token
    assert [q["name"] for q in (await api.data(QUEUES, token=token))["queues"]] == ["indexing"]
    assert code_of(await api.gql('{ queue(name: "background") { name } }', token=token)) == "FORBIDDEN"
    assert code_of(await api.gql(ADD, token=token)) == "FORBIDDEN"
    await api.data('mutation { addJob(queueName: "indexing", type: "x") { id } }', token=token)
    assert (await api_app.queue("background").counts()).pending == 0
    assert (await api_app.queue("indexing").counts()).pending == 1


async def test_queue_scoped_admin_cannot_manage_tokens(api: Api, api_app: Conveyor) -> None:
    store = TokenStore(api_app.client, api_app.settings.conveyor_prefix)
    token = (await store.create("scoped admin", "admin", ["background"])).token
    assert code_of(await api.gql("{ apiTokens { id } }", token=token)) == "FORBIDDEN"


async def test_tokens_are_stored_hashed(api: Api, api_app: Conveyor) -> None:
    stored = await api_app.client.hgetall(api_tokens_key(api_app.settings.conveyor_prefix))
    secret = api.tokens["admin"].split("_", 2)[2]
    assert stored
    assert all(secret not in value for value in stored.values())


async def test_token_store_validates_role_name_and_scope(api_app: Conveyor) -> None:
    store = TokenStore(api_app.client, api_app.settings.conveyor_prefix)
    with pytest.raises(TokenError, match="Unknown role"):
        await store.create("x", "root")
    with pytest.raises(TokenError, match="name"):
        await store.create(" ", "viewer")
    with pytest.raises(TokenError, match="nope"):
        await store.create("x", "viewer", ["nope"], known_queues=api_app.queue_names)
    issued = await store.create("x", "viewer", ["indexing"], known_queues=api_app.queue_names)
    assert [(t.name, t.queues) for t in await store.list()] == [("x", ("indexing",))]
    assert await store.verify(issued.token) == issued.info
    assert await store.verify(issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")) is None
    assert await store.revoke(issued.info.id)
    assert await store.revoke(issued.info.id) is False


async def test_anonymous_loopback_access_only_in_development_mode(start_api: StartApi) -> None:
    dev = await start_api(production=False, anonymous_loopback=True)
    assert (await dev.post({"query": QUEUES}, token=None)).status_code == 200
    prod = await start_api()
    assert (await prod.post({"query": QUEUES}, token=None)).status_code == 401


async def test_anonymous_access_with_an_invalid_token_is_still_refused(start_api: StartApi) -> None:
    dev = await start_api(production=False, anonymous_loopback=True)
    assert (await dev.post({"query": QUEUES}, token="cvy_bad")).status_code == 401


def test_anonymous_access_is_refused_on_a_non_loopback_host() -> None:
    with pytest.raises(ValueError, match="loopback"):
        ApiConfig(host="0.0.0.0", anonymous_loopback=True)


def test_embedded_redis_defaults_to_development_mode_on_loopback() -> None:
    from conveyor import load_settings
    from conveyor.api import load_api_config

    config = load_api_config(load_settings(redis_url=None, redis_host=None, redis_sentinels=None))
    assert (config.production, config.anonymous_loopback) == (False, True)
    configured = load_api_config(load_settings(redis_url="redis://localhost:6379/0"))
    assert (configured.production, configured.anonymous_loopback) == (True, False)
    with pytest.raises(ConfigError, match="CONVEYOR_API_PORT"):
        load_api_config(port=-1)


async def test_websocket_without_a_valid_token_is_closed(api: Api) -> None:
    async with api.ws(init=False) as ws:
        await ws.ws.send('{"type": "connection_init", "payload": {"authorization": "Bearer cvy_nope"}}')
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_websocket_subscribe_before_init_is_closed(api: Api) -> None:
    async with api.ws(init=False) as ws:
        await ws.subscribe('subscription { queueStats(queueName: "background") { name } }')
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


async def test_websocket_token_in_connection_init_payload(api: Api) -> None:
    async with api.ws("viewer") as ws:
        op = await ws.subscribe('subscription { queueStats(queueName: "background") { name } }')
        assert (await ws.next_data(op))["queueStats"]["name"] == "background"
        add = await ws.subscribe(ADD)
        message = await ws.receive()
        assert message["id"] == add
        assert message["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_websocket_token_in_the_handshake_header(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.tokens['viewer']}"}
    async with api.ws(None, init=False, additional_headers=headers) as ws:
        assert (await ws.init())["type"] == "connection_ack"
