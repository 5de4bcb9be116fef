"""A Flask app protected as the README shows, served by Werkzeug's threaded server.

Configuration from the environment: TG_ISSUER, TG_CLIENT_ID, TG_CLIENT_SECRET, TG_MAX_TTL, and
TG_PORT. Run as `python -m tests.e2e.apps.flask_app`.
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from werkzeug.serving import run_simple

from tokengate.resource import (
    Policy,
    TokenClaims,
    TokenGateWSGIMiddleware,
    ValidatorSettings,
    create_validator,
)


def create_app() -> Flask:
    """The protected app: `/auth-api/**` needs a token, `/public/ping` does not."""
    app = Flask(__name__)

    @app.get("/auth-api/hello")
    def hello() -> object:
        claims: TokenClaims = request.environ["tokengate.claims"]
        return jsonify(message=f"hello, {claims.client_id}", scope=claims.scope)

    @app.get("/public/ping")
    def ping() -> object:
        return jsonify(status="ok")

    validator = create_validator(
        ValidatorSettings(
            issuer=os.environ["TG_ISSUER"],
            client_id=os.environ["TG_CLIENT_ID"],
            client_secret=os.environ["TG_CLIENT_SECRET"],
            max_ttl=float(os.environ["TG_MAX_TTL"]),
        )
    )
    app.wsgi_app = TokenGateWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, validator, policy=Policy.protect("/auth-api/**")
    )
    return app


if __name__ == "__main__":
    run_simple("127.0.0.1", int(os.environ["TG_PORT"]), create_app(), threaded=True)
