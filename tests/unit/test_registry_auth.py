"""berth.registry.auth: WWW-Authenticate parsing, the token cache and the Basic/Bearer answers."""
from __future__ import annotations

import asyncio
import base64

import pytest

from berth.errors import Unauthorized
from berth.registry import auth
from berth.registry.auth import Challenge, Credentials, TokenCache, authorization, parse_challenges

HUB = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'


def test_docker_hub_challenge():
    assert parse_challenges(HUB) == [Challenge("bearer", {
        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
        "scope": "repository:library/busybox:pull"})]


def test_basic_challenge_and_scheme_case():
    assert parse_challenges('Basic realm="Registry Realm"') == [Challenge("basic", {"realm": "Registry Realm"})]
    assert parse_challenges("BASIC") == [Challenge("basic", {})]
    assert parse_challenges('bearer REALM="x"') == [Challenge("bearer", {"realm": "x"})]


@pytest.mark.parametrize("header", [
    'Basic realm="basic-realm", Bearer realm="https://t/token",service="reg"',
    'Basic realm="basic-realm",Bearer realm="https://t/token", service="reg"',
    '  Basic   realm = "basic-realm" ,  Bearer realm="https://t/token" , service="reg"  ',
])
def test_several_challenges_in_one_header(header):
    assert parse_challenges(header) == [Challenge("basic", {"realm": "basic-realm"}),
                                        Challenge("bearer", {"realm": "https://t/token", "service": "reg"})]


def test_quoted_commas_escaped_quotes_and_unquoted_values():
    ch = parse_challenges('Bearer realm="https://t/token",scope="repository:a/b:pull,push",'
                          'error="insufficient_scope"')
    assert ch[0].params["scope"] == "repository:a/b:pull,push"
    assert ch[0].params["error"] == "insufficient_scope"
    assert parse_challenges(r'Basic realm="say \"hi\", please"')[0].params == {"realm": 'say "hi", please'}
    assert parse_challenges("Bearer realm=https://t/token,service=reg, scope=repository:x:pull") == [
        Challenge("bearer", {"realm": "https://t/token", "service": "reg", "scope": "repository:x:pull"})]


def test_empty_header():
    assert parse_challenges("") == []
    assert parse_challenges("   ") == []


def test_credentials():
    assert not Credentials()
    assert not Credentials(password="only a password")
    assert Credentials("u") and Credentials(identity_token="t") and Credentials(registry_token="t")
    assert Credentials("user", "pa:ss").basic() == "Basic " + base64.b64encode(b"user:pa:ss").decode()


def test_merge_and_repository_scope():
    assert auth.repository_scope("library/busybox") == "repository:library/busybox:pull"
    assert auth.repository_scope("a/b", push=True) == "repository:a/b:pull,push"
    assert auth.merge_scopes(["repository:a:pull", "repository:a:push,pull", "repository:b:pull",
                              "registry:catalog:*", "repository:localhost:5000/c:pull"]) == [
        "registry:catalog:*", "repository:a:pull,push", "repository:b:pull", "repository:localhost:5000/c:pull"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_cache_expiry_with_injected_clock():
    clock = Clock()
    cache = TokenCache(clock)
    cache.put(("k",), "tok", 300)
    assert cache.get(("k",)) == "tok"
    assert cache.get(("other",)) is None
    clock.now += 294
    assert cache.get(("k",)) == "tok"
    clock.now += 1  # 5 s early: a token is not used in its last seconds
    assert cache.get(("k",)) is None
    clock.now -= 100
    assert cache.get(("k",)) is None  # an expired entry is dropped, not revived


@pytest.mark.parametrize("expires", [0, None, 10, 59])
def test_token_cache_min_life(expires):
    clock = Clock()
    cache = TokenCache(clock)
    cache.put(("k",), "tok", expires)
    clock.now += auth.MIN_TOKEN_LIFE - 6
    assert cache.get(("k",)) == "tok"
    clock.now += 1
    assert cache.get(("k",)) is None


class FakeFetch:
    def __init__(self, *answers: dict) -> None:
        self.answers = list(answers)
        self.calls: list[tuple] = []

    async def __call__(self, realm, query, authorization, form):
        self.calls.append((realm, query, authorization, form))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def answer(challenges, scopes, creds=Credentials(), cache=None, fetch=None, registry="reg.example"):
    cache = cache if cache is not None else TokenCache()
    fetch = fetch or FakeFetch({"token": "T"})
    return asyncio.run(authorization(challenges, scopes, creds, cache, fetch, registry))


def test_anonymous_bearer():
    fetch = FakeFetch({"token": "anon-token", "expires_in": 300})
    assert answer(parse_challenges(HUB), ["repository:library/busybox:pull"], fetch=fetch) == "Bearer anon-token"
    assert fetch.calls == [("https://auth.docker.io/token",
                            [("service", "registry.docker.io"), ("scope", "repository:library/busybox:pull")],
                            None, None)]


def test_bearer_with_basic_credentials_and_several_scopes():
    fetch = FakeFetch({"access_token": "user-token"})
    ch = parse_challenges('Bearer realm="https://t/token",service="reg",scope="repository:a:pull"')
    creds = Credentials("alice", "s3cret")
    got = answer(ch, ["repository:b:pull,push", "repository:a:push"], creds, fetch=fetch)
    assert got == "Bearer user-token"
    (realm, query, authz, form), = fetch.calls
    assert realm == "https://t/token" and form is None
    assert authz == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert query == [("service", "reg"), ("scope", "repository:a:pull,push"), ("scope", "repository:b:pull,push"),
                     ("account", "alice")]


def test_challenge_without_service_sends_no_service():
    fetch = FakeFetch({"token": "T"})
    answer([Challenge("bearer", {"realm": "https://t/token"})], ["repository:a:pull"], fetch=fetch)
    assert fetch.calls[0][1] == [("scope", "repository:a:pull")]


def test_identity_token_uses_the_oauth2_form():
    fetch = FakeFetch({"access_token": "oauth-token", "refresh_token": "r2"})
    ch = parse_challenges('Bearer realm="https://t/token",service="reg"')
    creds = Credentials("alice", identity_token="refresh-me")
    assert answer(ch, ["repository:a:pull"], creds, fetch=fetch) == "Bearer oauth-token"
    (realm, query, authz, form), = fetch.calls
    assert (realm, query, authz) == ("https://t/token", [], None)
    assert form == {"grant_type": "refresh_token", "refresh_token": "refresh-me", "service": "reg",
                    "client_id": "berth", "scope": "repository:a:pull"}


def test_registry_token_is_used_directly():
    fetch = FakeFetch({"token": "never"})
    got = answer(parse_challenges(HUB), ["repository:x:pull"], Credentials(registry_token="given"), fetch=fetch)
    assert got == "Bearer given" and fetch.calls == []


def test_bearer_preferred_over_basic():
    ch = parse_challenges('Basic realm="r", Bearer realm="https://t/token"')
    assert answer(ch, [], Credentials("u", "p")) == "Bearer T"


def test_tokens_are_cached_per_realm_service_scopes_and_user():
    cache, fetch = TokenCache(), FakeFetch({"token": "T1"}, {"token": "T2"}, {"token": "T3"}, {"token": "T4"})
    ch = parse_challenges('Bearer realm="https://t/token",service="reg"')

    async def run(scopes, creds=Credentials(), challenge=ch):
        return await authorization(challenge, scopes, creds, cache, fetch, "reg")

    async def main():
        assert await run(["repository:a:pull"]) == "Bearer T1"
        assert await run(["repository:a:pull"]) == "Bearer T1"
        assert len(fetch.calls) == 1
        assert await run(["repository:b:pull"]) == "Bearer T2"
        assert await run(["repository:a:pull"], Credentials("bob", "pw")) == "Bearer T3"
        other_realm = parse_challenges('Bearer realm="https://other/token",service="reg"')
        assert await run(["repository:a:pull"], challenge=other_realm) == "Bearer T4"
        assert await run(["repository:b:pull"]) == "Bearer T2"
        assert await run(["repository:a:pull"], Credentials("bob", "pw")) == "Bearer T3"
        assert len(fetch.calls) == 4

    asyncio.run(main())


def test_cached_token_expires():
    clock = Clock()
    cache, fetch = TokenCache(clock), FakeFetch({"token": "T1", "expires_in": 10}, {"token": "T2"})
    ch = parse_challenges('Bearer realm="https://t/token"')
    assert answer(ch, ["repository:a:pull"], cache=cache, fetch=fetch) == "Bearer T1"
    clock.now += auth.MIN_TOKEN_LIFE - 6  # expires_in 10 is raised to MIN_TOKEN_LIFE
    assert answer(ch, ["repository:a:pull"], cache=cache, fetch=fetch) == "Bearer T1"
    clock.now += 2
    assert answer(ch, ["repository:a:pull"], cache=cache, fetch=fetch) == "Bearer T2"
    assert len(fetch.calls) == 2


def test_basic_challenge():
    ch = parse_challenges('Basic realm="Registry Realm"')
    assert answer(ch, ["repository:a:pull"], Credentials("u", "p")) == "Basic " + base64.b64encode(b"u:p").decode()
    with pytest.raises(Unauthorized, match="reg.example: authentication required"):
        answer(ch, ["repository:a:pull"])
    with pytest.raises(Unauthorized):
        answer(ch, [], Credentials(identity_token="only-a-token"))


@pytest.mark.parametrize("header", ['Digest realm="x", nonce="y"', "Bearer", 'Bearer service="no-realm"', ""])
def test_unsupported_challenge(header):
    fetch = FakeFetch({"token": "T"})
    with pytest.raises(Unauthorized, match="unsupported authentication challenge"):
        answer(parse_challenges(header), ["repository:a:pull"], Credentials("u", "p"), fetch=fetch)
    assert fetch.calls == []


@pytest.mark.parametrize("doc", [{}, {"token": ""}, {"token": 5}, {"access_token": None}, []])
def test_no_token_from_the_token_server(doc):
    cache = TokenCache()
    with pytest.raises(Unauthorized, match="the token server https://t/token returned no token"):
        answer([Challenge("bearer", {"realm": "https://t/token"})], ["repository:a:pull"],
               cache=cache, fetch=FakeFetch(doc))
    assert cache._tokens == {}


def test_quoted_pair_backslash():
    assert parse_challenges(r'Basic realm="a\\b"')[0].params["realm"] == "a\\b"
