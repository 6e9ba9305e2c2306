"""The AIPP-config fuzzer: random `aipp_op` files (every field, values in and far out of
range, unknown enum numbers, repeated fields, non-finite and huge numbers, odd strings) and
token mutations of the ten real configs' shapes. A case passes when `gancc aipp import`'s
work (read, print as spec text, check the round trip) ends normally or in a GanccError."""

from __future__ import annotations

import random

from gancc.aipp.message import AIPP_MODES, INPUT_FORMATS, field_names, FIELD_TYPES

ODD_NUMBERS = ["0", "-1", "1e39", "-1e39", "inf", "-inf", "nan", "9" * 30, "9" * 5000,
               "2147483648", "-2147483649", "4294967296", "1e-45", "0x10", "1.5", "-0"]
ODD_STRINGS = ['""', '"a b"', '"a\\nb"', '"$(touch x)"', '"\\"q\\""', '"\\\\"', '"\u00e9\u4e2d"',
               '"a\\tb"', '"\\001"']


def _value(rng: random.Random, name: str) -> str:
    kind = FIELD_TYPES[name]
    if rng.random() < 0.15:
        return rng.choice(ODD_NUMBERS + ODD_STRINGS + ["true", "static", "RGB888_U8"])
    if kind == "AippMode":
        return rng.choice(AIPP_MODES + [str(rng.randint(0, 9))])
    if kind == "InputFormat":
        return rng.choice(INPUT_FORMATS + [str(rng.randint(0, 99))])
    if kind == "bool":
        return rng.choice(["true", "false"])
    if kind == "string":
        return rng.choice(ODD_STRINGS)
    if kind == "float":
        return repr(rng.choice([rng.uniform(-300, 300), rng.uniform(0, 1), 127.5, 1 / 255]))
    return str(rng.choice([rng.randint(-5, 300), rng.randint(0, 4096), rng.randint(-40000, 40000)]))


def random_block(rng: random.Random) -> str:
    names = field_names()
    chosen = rng.sample(names, rng.randint(0, 12))
    if rng.random() < 0.9:
        chosen = ["aipp_mode", "input_format"] + [n for n in chosen if n not in ("aipp_mode", "input_format")]
    lines = []
    for name in chosen:
        value = _value(rng, name) if name != "aipp_mode" or rng.random() < 0.2 else "static"
        lines.append(f"  {name}{rng.choice([': ', ' : ', ':'])}{value}")
        if rng.random() < 0.05:       # the same field again
            lines.append(f"  {name}: {_value(rng, name)}")
    return "aipp_op {\n" + "\n".join(lines) + "\n}\n"


def random_config(rng: random.Random) -> str:
    text = "".join(random_block(rng) for _ in range(rng.choice([1, 1, 1, 2, 3])))
    if rng.random() < 0.3:
        text = mutate_tokens(rng, text)
    return text


def mutate_tokens(rng: random.Random, text: str) -> str:
    tokens = text.split(" ")
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(tokens))
        op = rng.random()
        if op < 0.3:
            del tokens[i]
        elif op < 0.5:
            tokens.insert(i, tokens[i])
        elif op < 0.7:
            j = rng.randrange(len(tokens))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        else:
            tokens[i] = rng.choice(ODD_NUMBERS + ODD_STRINGS + ["{", "}", "aipp_op", "#"])
        if not tokens:
            tokens = ["aipp_op"]
    return " ".join(tokens)


def run_case(text: str) -> None:
    """What `gancc aipp import` does with a file holding `text` (GanccError is a pass)."""
    import tempfile
    from pathlib import Path

    from gancc.aipp.spectext import check_round_trip, read_config, to_spec

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "aipp.cfg"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        blocks = read_config(path)
        check_round_trip(blocks, to_spec(blocks, None, str(path)))
