"""Money in integer minor units; conversion from decimal amounts that partners send as strings."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

# ISO 4217 currencies whose minor unit is not 1/100.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip


class InvalidAmount(ValueError):
    pass


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor_units(amount: str | int | float | Decimal, currency: str) -> int:
    """`"12.50"` in EUR is 1250; `"1200"` in JPY is 1200. Rounds half-even; refuses negatives."""
    try:
        value = Decimal(str(amount).strip())
    except (InvalidOperation, ArithmeticError):
        raise InvalidAmount(f"{amount!r} is not an amount") from None
    if not value.is_finite() or value < 0:
        raise InvalidAmount(f"{amount!r} is not a non-negative amount")
    try:
        scaled = (value * (Decimal(10) ** exponent(currency))).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    except ArithmeticError:
        raise InvalidAmount(f"{amount!r} is too large") from None
    return int(scaled)
