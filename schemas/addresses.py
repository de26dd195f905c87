"""One spelling of an address and of a domain, for every path that compares them.

Postfix's log quotes a local part that needs it (``"a b"@x.example``) while a
policy request carries it bare (``a b@x.example``); a domain may come as UTF-8
(SMTPUTF8) or as its ASCII ``xn--`` form. Counting, enforcement, exemptions and
threshold scopes all compare the forms made here: the local part unquoted and
lower-cased, the domain lower-cased in its ASCII (IDNA) form. With
``addresses.extension_delimiters`` (Postfix's ``recipient_delimiter``) set,
``alice+news@`` is also ``alice@``.
"""

from __future__ import annotations


def normal_domain(domain: str) -> str:
    """``Bücher.Example.`` -> ``xn--bcher-kva.example``; a domain IDNA cannot encode stays
    lower-cased as given."""
    text = domain.strip().rstrip(".").lower()
    if text.isascii():
        return text
    try:
        return text.encode("idna").decode("ascii")
    except UnicodeError:
        return text


def normal_local_part(local: str, delimiters: str = "") -> str:
    """``"A b"`` -> ``a b``: quotes and their backslash escapes taken off, lower-cased, and
    cut at the first of ``delimiters`` (an address extension), unless that leaves nothing."""
    if len(local) >= 2 and local[0] == local[-1] == '"':
        body, out, escaped = local[1:-1], [], False
        for char in body:
            if escaped or char != "\\":
                out.append(char)
                escaped = False
            else:
                escaped = True
        local = "".join(out)
    for index, char in enumerate(local):
        if char in delimiters:
            local = local[:index] or local
            break
    return local.lower()


def normal_address(address: str, delimiters: str = "") -> str:
    """The address's one spelling; without ``@`` only lower-cased."""
    if (address.isascii() and '"' not in address and not address.endswith(".")
            and not (delimiters and any(d in address for d in delimiters))):
        return address.lower()  # the common case, on the worker's hot path
    local, at, domain = address.rpartition("@")
    if not at:
        return address.lower()
    return f"{normal_local_part(local, delimiters)}@{normal_domain(domain)}"


def domain_of(address: str | None) -> str | None:
    """The normal domain of ``user@domain``; None for the null sender or no ``@``."""
    if not address or "@" not in address:
        return None
    return normal_domain(address.rsplit("@", 1)[1]) or None
