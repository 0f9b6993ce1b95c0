"""HTTPS for a shared proxy (``proxy.tls_cert`` and ``proxy.tls_key``): checking the pair before serving, and how
this machine's own clients (the command line, the app, the warm-up) trust the engine's certificate.

They connect to a loopback address, which a certificate for the machine's network name does not name, and the
certificate is often self-signed; so they trust exactly the configured certificate, as its own anchor, and do not
match the host name. Nothing else is trusted for that connection.
"""

from __future__ import annotations

import ssl


def tls_problem(cert: str | None, key: str | None) -> str | None:
    """Why the certificate and key cannot serve HTTPS, in plain words, or None when they can (or neither is set)."""
    if not cert and not key:
        return None
    if not cert or not key:
        missing = "proxy.tls_key (--tls-key)" if cert else "proxy.tls_cert (--tls-cert)"
        return f"HTTPS needs a certificate and its key: set {missing} too"
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except FileNotFoundError as error:
        return f"the HTTPS certificate or key {error.filename} does not exist"
    except (ssl.SSLError, OSError, ValueError) as error:
        return f"the HTTPS certificate {cert} and key {key} cannot be used together: {error}"
    return None


def local_verify(cert: str | None) -> ssl.SSLContext | bool:
    """What a client on this machine verifies the engine with: the configured certificate alone, or the usual
    checks when there is none."""
    if not cert:
        return True
    context = ssl.create_default_context(cafile=cert)
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the certificate itself is the anchor, CA-signed or not
    return context
