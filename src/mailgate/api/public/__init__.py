"""Public, unauthenticated pages that recipients reach from their mail: the open pixel
(``/t/o/<token>.gif``), the click redirect (``/t/c/<token>``) and unsubscribe (``/u/<token>``).

Served wherever links point: the gateway's ``MAILGATE_PUBLIC_URL`` or a provider's
``tracking_domain`` (a name that resolves to the gateway). Not part of any API surface:
no key, no JSON envelope.
"""

from mailgate.api.public.routes import router

__all__ = ["router"]
