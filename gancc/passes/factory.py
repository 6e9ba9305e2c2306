"""The pass factory: pipeline steps -> configured pass instances. The one place that does it,
for a build, `gancc check`, `gancc opt --passes` and `gancc explain`.

A step (gancc.spec.model.PassStep: a name, options and where it was written) names a `rule`
of the spec file, or a registered rewrite (gancc.passes.registry; `registry.make_pass` checks
its options). Steps come from a spec's `rewrite { ... }` block, where a mistake is a SpecError
at the step or option, or from pipeline text (`--passes`), where it is a GanccError: the two
grammars are one (gancc/spec/pipeline.lark), and so is this factory.

A spec's user code is loaded here, not when the spec is parsed: its `rewrites "folder/"`
statements, before any step is looked up; a folder that is missing or does not import is an
error at its statement. A rule may not take the name of a registered rewrite, which is only
known once that code is loaded, so that check is here too.
"""

from __future__ import annotations

from typing import Sequence

from gancc.errors import SpecError, did_you_mean
from gancc.passes import registry
from gancc.passes.base import Pass
from gancc.passes.rules import make_rule_pass
from gancc.spec.model import ModelSpec, PassStep, RewritesDir, RuleSpec, SpecFile, find_rule

def load_spec_code(rewrite_dirs: Sequence[RewritesDir], rules: Sequence[RuleSpec],
                   source: str | None = None) -> None:
    """Load a spec's `rewrites` folders, then check its rules' names against the registry.
    SpecError at the statement or the rule's name (`source`: the spec text, for the caret)."""
    for folder in rewrite_dirs:
        try:
            registry.load_dir(folder.path)
        except registry.RegistryError as err:
            raise SpecError(err.message, folder.span, err.hint or
                            "the path is relative to the spec file's folder", source) from None
    if not rules:
        return
    known = registry.all_rewrites()
    for rule in rules:
        if rule.name in known:
            raise SpecError(f"rule '{rule.name}' has the name of the rewrite defined at "
                            f"{known[rule.name].source}", rule.name_span, "rename the rule",
                            source)


def load_spec(spec: SpecFile) -> None:
    """`load_spec_code` for a whole parsed file (its rules may serve `--spec`)."""
    load_spec_code(spec.rewrite_dirs, spec.rules, spec.source)


def make_passes(model: ModelSpec, source: str | None = None) -> list[Pass]:
    """A model's rewrite pipeline as configured pass instances, its rules checked at the
    model's opset. Loads the spec's user code first. SpecError at the step or option."""
    load_spec_code(model.rewrite_dirs, model.rules, source)
    return [_spec_step(step, model.rules, model.opset, source) for step in model.rewrites]


def make_pipeline(steps: Sequence[PassStep], rules: Sequence[RuleSpec] = ()) -> list[Pass]:
    """Passes for steps written on the command line (`parse_pipeline`). GanccError (the
    registry's RegistryError / OptionError) on an unknown name or a bad option."""
    return [make_step(step, rules) for step in steps]


def make_step(step: PassStep, rules: Sequence[RuleSpec] = (), opset: int | None = None
              ) -> Pass:
    """One pass: the spec rule `step` names, if `rules` has one, else the registered rewrite.
    A rule is checked at `opset` when one is given (else when it runs, at the graph's)."""
    rule = find_rule(tuple(rules), step.name)
    if rule is None:
        return registry.make_pass(step.name, step.option_dict())
    if step.options:
        raise registry.OptionError(f"rule '{rule.name}' takes no options",
                                   f"it is declared at {rule.source}")
    return make_rule_pass(rule, opset)


def _spec_step(step: PassStep, rules: Sequence[RuleSpec], opset: int,
               source: str | None) -> Pass:
    """make_step, its errors as SpecErrors at the step or option of the spec."""
    rule = find_rule(tuple(rules), step.name)
    if rule is not None and step.options:
        raise SpecError(f"rule '{rule.name}' takes no options", step.options[0].span,
                        f"it is declared at line {rule.span.line}", source)
    try:
        return make_step(step, rules, opset)
    except registry.OptionError as err:
        bad = next((o for o in step.options if o.name and o.name in err.message), None)
        raise SpecError(err.message, bad.span if bad else step.span, err.hint, source) from None
    except registry.RegistryError as err:
        names = [r.name for r in rules] + list(registry.all_rewrites())
        raise SpecError(err.message, step.span, did_you_mean(step.name, names) or err.hint,
                        source) from None

