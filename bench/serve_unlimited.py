"""`tokengate serve` as it ran before the serving limits: uvicorn's stock httptools protocol
(no head limit or deadline, no connection cap), for `serving_limits.py` to compare against.

    python bench/serve_unlimited.py SERVE-ARGS...
"""

from __future__ import annotations

import sys

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

import tokengate.serving.config
from tokengate.cli import main


def stock_protocol(limits: object) -> type[HttpToolsProtocol]:
    """Whatever the limits: uvicorn's own protocol class."""
    return HttpToolsProtocol


if __name__ == "__main__":
    tokengate.serving.config.protocol_class = stock_protocol  # type: ignore[assignment]
    sys.argv[0] = "tokengate"
    main(["serve", *sys.argv[1:]])
