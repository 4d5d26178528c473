"""jwt-auth's claim checks (issue 22): what the options render to, what they cost per request, and
what the catalog accepts. Their behaviour on real tokens is in tests/e2e/test_plugins.py."""

import pytest

from gateway_agent.consumer_set import ConsumerSet
from gateway_agent.directives import RenderError, RenderOptions
from gateway_agent.plugins import jwt_auth
from gateway_agent.plugins.context import RenderContext
from gateway_agent.protocol import Consumer, JwtAuthCredential
from saas.catalog.plugins import PLUGINS, with_new_config_defaults

CONTEXT = RenderContext(
    RenderOptions(config_dir="/etc/gw"),
    consumers=ConsumerSet.of(
        [
            Consumer(
                id=1,
                username="app",
                credentials=[
                    JwtAuthCredential(
                        id=1, key="app-key", algorithm="HS256", secret="a-secret-of-at-least-32-characters"
                    )
                ],
            ),
        ]
    ),
)


def after_signature(config: dict) -> list[str]:
    """The request rules from the signature's answer on: the ones every authenticated request runs."""
    rules = jwt_auth.render({"g1": config}, "jwt", CONTEXT).request
    start = next(i for i, line in enumerate(rules) if "Invalid JWT signature" in line)
    return rules[start:]


def test_new_configurations_require_exp_and_stored_ones_without_the_option_keep_their_behaviour():
    schema = PLUGINS["jwt-auth"].schema["properties"]
    assert schema["claims_to_verify"]["default"] == ["exp"]
    # What the control plane saves: a new or changed configuration gets the default written in.
    assert with_new_config_defaults({"jwt-auth": {}}) == {"jwt-auth": {"claims_to_verify": ["exp"]}}
    assert with_new_config_defaults({"jwt-auth": {"claims_to_verify": []}})["jwt-auth"] == {
        "claims_to_verify": []
    }
    stored = {"jwt-auth": {"clock_skew_s": 5}}
    assert with_new_config_defaults(stored, previous=stored) == stored  # unchanged: as it was
    explicit = after_signature({"claims_to_verify": ["exp"]})
    assert any("JWT exp claim is missing or not a valid NumericDate" in line for line in explicit)
    # nbf is checked when present, and only looked for in the payload's text when unreadable.
    assert any("JWT nbf claim is not a valid NumericDate" in line and "ub64dec" in line for line in explicit)
    # A configuration stored before the option: present claims checked, none required.
    absent, optional = after_signature({}), after_signature({"claims_to_verify": []})
    assert absent == optional
    assert any("JWT exp claim is not a valid NumericDate" in line for line in absent)
    assert not any("JWT exp claim is missing" in line for line in absent)


def test_the_claim_checks_cost_few_rules_per_request():
    # Before issue 22: signature answer, 2 session variables, now, exp, expired, nbf, not yet
    # valid, consumer: 9 lines, 11 rules once the two answers are tracked and counted (one rule
    # more each). Now 14 lines and 15 rules: the claims' text (2), the checks record their reason
    # (4) and one answer gives it (2 rules); one more with maximum_expiration.
    assert len(after_signature({"claims_to_verify": ["exp"]})) == 14
    assert len(after_signature({"maximum_expiration": 3600, "claims_to_verify": ["exp", "nbf"]})) == 15
    answers = [line for line in after_signature({"maximum_expiration": 60}) if "http-request return" in line]
    assert len(answers) == 2  # the signature's and the claims'


def test_maximum_expiration_bounds_exp_minus_now_within_the_skew_and_requires_exp():
    rules = after_signature({"maximum_expiration": 600, "clock_skew_s": 30, "claims_to_verify": []})
    bound = next(line for line in rules if "maximum expiration" in line)
    # The skew before now: HAProxy 2.6 saturates a sum of two negative numbers to LLONG_MAX.
    assert "var(txn.jwt_exp),sub(30),sub(txn.jwt_now) -m int gt 600" in bound
    assert any("JWT exp claim is missing" in line for line in rules)


@pytest.mark.parametrize(
    "config",
    [{"claims_to_verify": ["iat"]}, {"claims_to_verify": "exp"}, {"maximum_expiration": -1}],
)
def test_a_config_the_catalog_would_refuse_stops_the_render(config):
    with pytest.raises(RenderError):
        jwt_auth.render({"g1": config}, "jwt", CONTEXT)
    assert list(PLUGINS["jwt-auth"].validator.iter_errors(config))


def test_the_catalog_takes_kongs_options():
    validator = PLUGINS["jwt-auth"].validator
    config = {"claims_to_verify": ["exp", "nbf"], "maximum_expiration": 31536000, "clock_skew_s": 60}
    assert not list(validator.iter_errors(config))
    for wrong in (
        {"claims_to_verify": ["exp", "exp"]},
        {"maximum_expiration": 31536001},
        {"maximum_expiration": 1.5},
        {"lifetime_grace_period": 5},
    ):
        assert list(validator.iter_errors(wrong)), wrong
