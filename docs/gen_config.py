"""Write docs/config.md, the reference of every config field, from the config dataclasses.

    python docs/gen_config.py            # rewrite docs/config.md
    python docs/gen_config.py --check    # exit 1 when docs/config.md is stale (tests run this)

Everything on the page comes from the code: the sections and keys from the dataclass fields of
:class:`autobalance.experiment.ExperimentConfig` (recursively), types from the type hints,
defaults from the field defaults, ranges from each class's ``RULES`` (their messages), choices
from the ``expected one of (...)`` error a wrong value raises, and descriptions from the class
docstrings (the sentences or ``Args:`` entries that name the field). ``NOTES`` below adds one line
for a field its class docstring does not describe; a docstring that does wins.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import typing
from pathlib import Path
from typing import Any

from autobalance.experiment import ExperimentConfig

PAGE = Path(__file__).with_name("config.md")
CHECK_HINT = "run `python docs/gen_config.py` and commit docs/config.md"

# (class name, field) → one line, for fields that their class docstring does not describe
NOTES: dict[tuple[str, str], str] = {
    ("DatasetConfig", "name"): "Which dataset: a built-in loader, or `csv` for your own table.",
    ("DatasetConfig", "data_dir"): "Folder the dataset is looked up in; null: "
    "`$AUTOBALANCE_DATA`, else the user cache directory (`~/.cache/autobalance/data`).",
    ("DatasetConfig", "path"): "The dataset's own file or folder (overrides `data_dir`).",
    ("ModelConfig", "name"): "The network (`models.make_model`).",
    ("ModelConfig", "channels_last"): "Store the model and image batches in NHWC layout.",
    ("SearchConfig", "objective"): "The validation objective L_val of the upper level "
    "(`autobalance.objectives`).",
    ("SearchConfig", "retrain"): "Retrain θ from scratch on all of S with α* frozen "
    "(Algorithm 1's last phase); false returns the searched θ.",
    ("SearchConfig", "eval_train"): "Also score the training split after each epoch.",
    ("SearchConfig", "device"): "`cpu`, `cuda`, `cuda:1`, `mps` (the CLI also takes `auto`).",
    ("SearchConfig", "retrain_train"): "θ's schedule for the retrain phase; null: `train`'s.",
    ("SpaceConfig", "kind"): "How α is shared across classes: frequency `clusters` (D_π), "
    "`la_tau` (one τ), or `full` (per class).",
    ("SpaceConfig", "search"): "Which of w (`weight`), l (`additive`), Δ (`multiplicative`) "
    "are searched; the others stay at their init.",
    ("SpaceConfig", "init"): "α's initial loss (`balanced`, `la`, `cdt`, `vs`, ...).",
    ("SpaceConfig", "bound_additive"): "Half-width of the box on the raw offset of l.",
    ("SpaceConfig", "bound_multiplicative"): "Half-width of the box on the raw offset of Δ.",
    ("SpaceConfig", "bound_weight"): "Half-width of the box on the raw offset of log w.",
    ("HyperConfig", "train_batches"): "Training batches in the Hessian-vector products.",
    ("HyperConfig", "val_batches"): "Validation batches in ∇θ L_val (`uniform`/`balanced`).",
    ("HyperConfig", "method"): "How [∂²L_train/∂θ²]⁻¹ is applied: Neumann series, conjugate "
    "gradient, or an exact solve (small models).",
    ("HyperConfig", "scope"): "The θ of the implicit hypergradient: the `full` network or "
    "its `head`.",
    ("AlphaConfig", "optimizer"): "The upper-level optimiser on α′.",
    ("AlphaConfig", "schedule"): "α's learning-rate schedule (`follow`: θ's milestones).",
    ("AlphaConfig", "normalize"): "Scale each hypergradient to unit norm before the step.",
    ("GuardConfig", "enabled"): "Turn the whole guard on or off.",
    ("GuardConfig", "fallback"): "Allow α* to fall back to its initialisation at the end.",
    ("SpaceConfig", "delta_scale"): "s in Δ = s·σ(d): Δ's upper bound; 2 puts Δ = 1 at d = 0.",
    ("HyperConfig", "val_batch_size"): "Validation batch size for `uniform`/`balanced` "
    "sampling; null: `train.batch_size`.",
    ("HyperConfig", "val_full_max"): "Above this many S_V samples, `full` sampling takes a "
    "class-balanced sample of that many.",
    ("HyperConfig", "iterations"): "Terms of the Neumann series (iterations − 1 "
    "Hessian-vector products), or CG iterations.",
    ("HyperConfig", "scale"): "The Neumann step s; with `auto_scale`, min(s, 1/λ̂_max).",
    ("HyperConfig", "auto_scale"): "Estimate λ̂_max by power iteration and cap the step at "
    "1/λ̂_max (see `rescale`).",
    ("HyperConfig", "power_iterations"): "Power-iteration steps of a fresh λ̂_max estimate "
    "(a warm start takes a quarter of them).",
    ("HyperConfig", "damping"): "λ added to the Hessian, H + λI; null: θ's weight decay.",
    ("TrainConfig", "epochs"): "Epochs of each phase (the search, and the retrain).",
    ("TrainConfig", "batch_size"): "θ's mini-batch size.",
    ("TrainConfig", "lr"): "θ's peak learning rate.",
    ("TrainConfig", "momentum"): "SGD momentum.",
    ("TrainConfig", "nesterov"): "Nesterov momentum.",
    ("TrainConfig", "weight_decay"): "L2 weight decay on θ.",
    ("TrainConfig", "warmup_epochs"): "Linear learning-rate warm-up, in epochs.",
    ("TrainConfig", "milestones"): "Fractions of the epochs at which the lr is multiplied by "
    "`lr_decay`.",
    ("TrainConfig", "lr_decay"): "The factor of each milestone.",
    ("TrainConfig", "eval_batch_size"): "Batch size of evaluation passes.",
    ("TrainConfig", "eval_every"): "Evaluate the test set every this many epochs.",
    ("TrainConfig", "drop_last"): "Drop the last incomplete batch of each epoch.",
}


def _type_name(hint: Any) -> str:
    text = str(hint) if not isinstance(hint, type) else hint.__name__
    text = re.sub(r"\b(typing|autobalance\.[\w.]+)\.", "", text)
    return text.replace("NoneType", "None")


def _nested(hint: Any) -> type | None:
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate) and isinstance(candidate, type):
            return candidate
    return None


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if dataclasses.is_dataclass(value):
        return "(section)"
    if value is None:
        return "`null`"
    if value == "":
        return '`""`'
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _rule_text(cls: type, name: str) -> str:
    """The ranges of ``cls.RULES[name]``: each rule's message for a value it refuses."""
    out = []
    for rule in getattr(cls, "RULES", {}).get(name, ()):
        for probe in (-1e300, 1e300, (), (-1e300,)):
            try:
                message = rule(probe)
            except (TypeError, ValueError):
                continue
            if message:
                out.append(re.sub(r"^(must be |must lie in |must |are )", "", message))
                break
    return "; ".join(out)


def _choices(cls: type, name: str, hint: Any) -> str:
    """The ``expected one of (...)`` list a wrong string raises, if any."""
    wrong: Any = "__not_a_choice__"
    if typing.get_origin(hint) is tuple and typing.get_args(hint)[:1] == (str,):
        wrong = (wrong,)
    elif hint is not str and hint != (str | None):
        return ""
    try:
        cls(**{name: wrong})
    except (ValueError, TypeError) as exc:
        found = re.search(r"one of (\([^)]*\))", str(exc))
        if found:
            return "one of " + found.group(1).replace("'", "`")
    return ""


def _segments(doc: str) -> list[str]:
    """Docstring pieces: ``Args:`` entries, bullets and sentences."""
    pieces: list[str] = []
    for block in re.split(r"\n\s*\n", doc):
        if block.lstrip().startswith(("Args:", "Attributes:")):
            entries = re.split(r"\n\s{4}(?=[\w, ]+:)", "\n" + block.split(":", 1)[1])
            pieces += [" ".join(e.split()) for e in entries if e.strip()]
        elif re.match(r"\s*- ", block):
            pieces += [" ".join(b.split()) for b in re.split(r"\n\s*- ", "\n" + block) if b.strip()]
        else:
            text = " ".join(block.split())
            pieces += re.split(r"(?<=\.)\s+(?=``|[A-Z(])|(?<=;)\s+", text)
    return pieces


def _is_constraint(piece: str) -> bool:
    """A bare range list (``a`` ≥ 1, ``b`` in (0, 1) or null): the values column says it."""
    words = re.findall(r"[A-Za-z]{4,}", re.sub(r"``[^`]*``", "", piece))
    return len(words) <= 2


def _describe(cls: type, name: str) -> str:
    names = {f.name for f in dataclasses.fields(cls)}
    for piece in _segments(inspect.getdoc(cls) or ""):
        if piece.startswith((f"{name}:", f"{name} (", f"``{name}``:")):
            return piece.split(":", 1)[1].strip()
        mentioned = set(re.findall(r"``(\w+)``", piece)) & names
        if name in mentioned and len(mentioned) <= 2 and not _is_constraint(piece):
            return piece
    return NOTES.get((cls.__name__, name), "")


def _cell(text: str) -> str:
    return _markdown(text).replace("|", "\\|")


def _markdown(text: str) -> str:
    """reST roles and literals as Markdown code: ``x`` and :class:`~a.b.X` → `x`, `X`."""
    text = re.sub(r":(?:class|func|meth|mod|attr|data):`~?(?:[\w.]+\.)?([\w]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _prose(doc: str) -> str:
    """The class docstring without its ``Args:`` section (the table has the fields), each
    paragraph on one line, bullets kept."""
    out = []
    for block in re.split(r"\n\s*\n", doc):
        if block.lstrip().startswith(("Args:", "Attributes:")):
            continue
        if re.match(r"\s*- ", block):
            bullets = re.split(r"\n\s*- ", "\n" + block.strip())
            out.append("\n".join("- " + " ".join(b.split()) for b in bullets if b.strip()))
        else:
            out.append(" ".join(block.split()))
    return _markdown("\n\n".join(out))


def _sections(cls: type, prefix: str, out: list[str], seen: dict[type, str]) -> None:
    key = prefix.rstrip(".") or "top level"
    if cls in seen:  # a second section of the same class (retrain_train): its keys only
        keys = ", ".join(f"`{prefix}{f.name}`" for f in dataclasses.fields(cls))
        first = seen[cls]
        out += [f"## `{key}`: {cls.__name__}", ""]
        out += [f"The keys of [`{first}`](#{_anchor(cls)}), under `{key}`: {keys}.", ""]
        return
    seen[cls] = key
    hints = typing.get_type_hints(cls)
    doc = inspect.getdoc(cls) or ""
    out += [f"## `{key}`: {cls.__name__}", "", _prose(doc), ""]
    out += ["| key | type | default | values | description |", "|---|---|---|---|---|"]
    nested: list[tuple[type, str]] = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        sub = _nested(hint)
        values = _rule_text(cls, f.name) or _choices(cls, f.name, hint)
        text = _describe(cls, f.name)
        if sub is not None:
            text = (text + " " if text else "") + f"See [`{prefix}{f.name}`](#{_anchor(sub)})."
            nested.append((sub, f"{prefix}{f.name}."))
        row = [f"`{prefix}{f.name}`", _type_name(hint), _default(f), values, text]
        out.append("| " + " | ".join(_cell(c) for c in row) + " |")
    out.append("")
    for sub, sub_prefix in nested:
        _sections(sub, sub_prefix, out, seen)


def _anchor(cls: type) -> str:
    return f"{cls.__name__.lower()}"


def render() -> str:
    """The whole page, as Markdown."""
    out = [
        "# Configuration reference",
        "",
        "<!-- generated by docs/gen_config.py from the config dataclasses: do not edit -->",
        "",
        "Every key of an experiment config: a YAML preset (`autobalance presets`), a `--config`",
        "file, or a `--set key.sub=value` override. The engine's own settings are the `search`",
        "section, a `SearchConfig` (`autobalance.SearchConfig`, the library API's config).",
        "A wrong key or value is refused with one line naming the valid ones.",
        "",
    ]
    _sections(ExperimentConfig, "", out, {})
    # an anchor per class, for the "See" links, before the first section of each class
    anchored: set[str] = set()

    def anchor(m: re.Match[str]) -> str:
        name = m.group(2).lower()
        if name in anchored:
            return m.group(0)
        anchored.add(name)
        return f'<a id="{name}"></a>\n\n{m.group(0)}'

    return re.sub(r"^## `([^`]+)`: (\w+)$", anchor, "\n".join(out).rstrip() + "\n", flags=re.M)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is stale: {CHECK_HINT}", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
