"""Who is calling: the ``Authorization: Bearer <token>`` header mapped to a principal.

Tokens come from a mapping, a YAML/JSON file (``{token: principal}``), or the env var
``LLMFORGE_EMULATOR_TOKENS`` holding either a file path or ``token=principal`` pairs separated
by commas. A token that is not listed is refused, as the real workspace refuses it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from llmforge.emulator.errors import ApiError
from llmforge.errors import ConfigError

ENV_VAR = "LLMFORGE_EMULATOR_TOKENS"


def _parse_pairs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        token, sep, principal = pair.partition("=")
        if not sep or not token.strip() or not principal.strip():
            raise ConfigError(
                f"{ENV_VAR}: '{pair}' is not 'token=principal'; write pairs like "
                f"'tok1=alice,tok2=bob' or give the path of a YAML file {{token: principal}}"
            )
        out[token.strip()] = principal.strip()
    return out


def _load_file(path: Path) -> dict[str, str]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the tokens file {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"tokens file {path} must map each token to a principal name, e.g. 'tok1: alice'")
    return {str(k): v for k, v in data.items()}


def load_tokens(source: Mapping[str, str] | str | os.PathLike | None = None) -> dict[str, str]:
    """Token -> principal from ``source`` or, when ``source`` is None, from ``LLMFORGE_EMULATOR_TOKENS``.

    Returns an empty dict when neither is given; the caller then issues a token itself.
    """
    if source is None:
        source = os.environ.get(ENV_VAR) or None
        if source is None:
            return {}
    if isinstance(source, Mapping):
        return {str(k): str(v) for k, v in source.items()}
    text = os.fspath(source)
    if Path(text).is_file():
        return _load_file(Path(text))
    if "=" in text:
        return _parse_pairs(text)
    raise ConfigError(f"tokens source '{text}' is neither a file nor 'token=principal' pairs")


def new_token() -> str:
    """A fresh random token in the shape of a Databricks personal access token."""
    return "dapi" + secrets.token_hex(16)


class Identity:
    """Resolves the bearer token of a request to a principal name.

    A service principal authenticates with OAuth M2M (``POST /oidc/v1/token``): its client id is
    the principal's name and its client secret one of that principal's tokens; the access token
    it receives acts as that principal.
    """

    def __init__(self, tokens: Mapping[str, str]) -> None:
        if not tokens:
            raise ConfigError("the emulator needs at least one token; pass tokens={'<token>': '<principal>'}")
        if "__system__" in tokens.values():  # llmforge.catalog.SYSTEM bypasses every grant and filter
            raise ConfigError("no token may act as the internal principal '__system__'; map it to a user")
        self._tokens = dict(tokens)

    def principal(self, authorization: str | None) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError("UNAUTHENTICATED", "Missing 'Authorization: Bearer <token>' header.")
        principal = self._tokens.get(token.strip())
        if principal is None:
            raise ApiError("UNAUTHENTICATED", "Invalid access token.")
        return principal

    def service_principal(self, client_id: str, client_secret: str) -> str:
        if not client_id or self._tokens.get(client_secret) != client_id:
            raise ApiError("UNAUTHENTICATED", "Invalid client id or secret.")
        return client_id

    def mint(self, principal: str) -> str:
        """A new access token acting as ``principal`` (for the life of the emulator)."""
        token = new_token()
        self._tokens[token] = principal
        return token
