"""``[imap.oauth2]`` and ``[smtp.oauth2]``: logging in to the mail servers with OAuth2 instead of a password."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from dsr_mailbot.config.fields import ConfigPath, Filled, KeyProblem, NonNegative, Section, Str, resolve_secret
from dsr_mailbot.credentials.providers import PROVIDERS, Provider, Use

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def _endpoint(value: str) -> str:
    """HTTPS, or plain HTTP to this machine only: a token sent in clear over a network is a token given away."""
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return value
    raise KeyProblem(None, "expected an https:// URL (http:// only to 127.0.0.1)")


Endpoint = Annotated[str, AfterValidator(_endpoint)]


class OAuth2Config(Section):
    provider: Literal["microsoft", "google", "yandex", "generic"]
    client_id: Filled
    client_secret: Str | None = Field(default=None, repr=False)  # or client_secret_env / client_secret_file
    token_file: ConfigPath  # the refresh token, written by 'dsr-mailbot auth login', mode 0600
    tenant: Filled = "organizations"  # Microsoft: the directory (tenant) id or domain, or "organizations"
    # Each defaults to the provider's (credentials/providers.py); generic needs token_endpoint and scope.
    token_endpoint: Endpoint | None = None
    authorization_endpoint: Endpoint | None = None
    device_authorization_endpoint: Endpoint | None = None
    scope: Str | None = None
    redirect_port: NonNegative = 0  # the loopback flow's port on 127.0.0.1; 0: any free one

    @model_validator(mode="before")
    @classmethod
    def _secret(cls, data: Any, info: ValidationInfo) -> Any:
        return resolve_secret(data, "client_secret", info, required=False)

    @model_validator(mode="after")
    def _generic_needs_endpoints(self) -> OAuth2Config:
        if self.provider == "generic":
            for key in ("token_endpoint", "scope"):
                if getattr(self, key) is None:
                    raise KeyProblem(key, 'missing (provider = "generic" names its own)')
            if self.authorization_endpoint is None and self.device_authorization_endpoint is None:
                raise KeyProblem("authorization_endpoint",
                                 'missing (provider = "generic" needs it, or device_authorization_endpoint)')
        return self

    @property
    def known(self) -> Provider:
        return PROVIDERS[self.provider]

    def _url(self, configured: str | None, default: str | None) -> str | None:
        """The configured URL as written; else the provider's, with its {tenant} filled in."""
        if configured:
            return configured
        return default.format(tenant=self.tenant) if default else None

    def token_url(self) -> str:
        url = self._url(self.token_endpoint, self.known.token_endpoint)
        assert url is not None  # generic must set it (checked above); the others have one
        return url

    def authorization_url(self) -> str | None:
        return self._url(self.authorization_endpoint, self.known.authorization_endpoint)

    def device_url(self) -> str | None:
        return self._url(self.device_authorization_endpoint, self.known.device_authorization_endpoint)

    def scope_for(self, use: Use) -> str:
        scope = self.scope or self.known.scopes.get(use)
        assert scope is not None  # generic must set it (checked above); the others have both uses
        return scope
