"""What an API error says when Redis may or may not have taken a write."""

from __future__ import annotations

from graphql import GraphQLError

from conveyor.api.errors import describe
from conveyor.queue.errors import EnqueueUnconfirmedError
from conveyor.redis.errors import RedisUnavailableError


def test_an_unconfirmed_add_says_it_may_have_landed_and_names_the_ids_to_add_again() -> None:
    original = EnqueueUnconfirmedError("redis://127.0.0.1:1", "Timeout reading from socket", ["a1b2", "c3d4"])
    message, extensions = describe(GraphQLError("x", path=["addJobs"], original_error=original))
    assert "may or may not have been added" in message
    assert "nothing was written" not in message
    assert extensions == {"code": "REDIS_UNAVAILABLE", "jobIds": ["a1b2", "c3d4"]}


def test_redis_down_on_a_read_does_not_claim_anything_about_writes() -> None:
    original = RedisUnavailableError("redis://127.0.0.1:1", "Connection refused")
    message, extensions = describe(GraphQLError("x", path=["queues"], original_error=original))
    assert message == "Redis is unavailable. Try again shortly."
    assert extensions == {"code": "REDIS_UNAVAILABLE"}
