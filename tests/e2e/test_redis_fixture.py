"""The Redis fixture works: a real redis-server spoken to in RESP."""
import time

import pytest

from aigwtest import RedisError


def test_ping(redis):
    assert redis.cmd("PING") == "PONG"


def test_set_get(redis):
    assert redis.cmd("SET", "k:str", "hello world") == "OK"
    assert redis.cmd("GET", "k:str") == "hello world"
    assert redis.cmd("GET", "k:missing") is None
    assert redis.cmd("SET", "k:str", "x", "NX") is None
    assert redis.cmd("DEL", "k:str") == 1


def test_incr(redis):
    redis.cmd("DEL", "k:cnt")
    assert redis.cmd("INCR", "k:cnt") == 1
    assert redis.cmd("INCR", "k:cnt") == 2
    assert redis.cmd("INCRBY", "k:cnt", 40) == 42
    redis.cmd("SET", "k:notnum", "abc")
    with pytest.raises(RedisError, match="not an integer"):
        redis.cmd("INCR", "k:notnum")


def test_pexpire_ttl(redis):
    redis.cmd("SET", "k:exp", "v")
    assert redis.cmd("TTL", "k:exp") == -1
    assert redis.cmd("TTL", "k:absent") == -2
    assert redis.cmd("PEXPIRE", "k:exp", 200) == 1
    pttl = redis.cmd("PTTL", "k:exp")
    assert 0 < pttl <= 200
    assert redis.cmd("TTL", "k:exp") in (0, 1)
    deadline = time.monotonic() + 3
    while redis.cmd("EXISTS", "k:exp") == 1:
        assert time.monotonic() < deadline, "key did not expire"
        time.sleep(0.02)
    assert redis.cmd("GET", "k:exp") is None
    assert redis.cmd("TTL", "k:exp") == -2


def test_arrays_and_binary_safe(redis):
    redis.cmd("DEL", "k:list")
    assert redis.cmd("RPUSH", "k:list", "a", "b c", "") == 3
    assert redis.cmd("LRANGE", "k:list", 0, -1) == ["a", "b c", ""]
    assert redis.cmd("EVAL", "return {1, 'two', redis.call('INCR', KEYS[1])}", 1, "k:lua") \
        == [1, "two", 1]
