"""The template's usage plans and the README's plan table, rendered from the layer's plans.

``spectra.ratelimits.plans`` is the one definition of every limit. ``make plans`` rewrites the
generated parts of ``template.yaml`` (the usage plans between ``# BEGIN usage plans`` and
``# END usage plans``, the worker's usage plan keys between ``# BEGIN/END usage plan keys``, and
every ``USAGE_PLAN_IDS`` value) and the README table (between ``<!-- BEGIN plans -->`` and ``<!-- END plans -->``);
``--check`` (run by the tests) fails when either has drifted from the definitions.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from spectra.ratelimits.plans import PLANS, Plan, Tier
from spectra_local.template import REPO_ROOT

TEMPLATE_MARKERS = ("  # BEGIN usage plans\n", "  # END usage plans\n")
PLAN_KEYS_MARKERS = ("                # BEGIN usage plan keys\n", "                # END usage plan keys\n")
PLAN_IDS = re.compile(r"""!Sub '\{"standard": "\$\{StandardUsagePlan\}"[^']*\}'""")
README_MARKERS = ("<!-- BEGIN plans -->\n", "<!-- END plans -->\n")


def usage_plan_logical_id(plan: Plan) -> str:
    return f"{plan.name.capitalize()}UsagePlan"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def render_usage_plans() -> str:
    """The ``AWS::ApiGateway::UsagePlan`` resources, one per plan."""
    blocks = [
        "  # Generated from spectra.ratelimits.plans by `make plans`; edit the plans there. Each is the\n"
        "  # edge backstop of a plan: both tiers together (one usage identifier per org), and a daily\n"
        "  # quota of both at their sustained rate all day. The exact per-tier limits are the buckets.\n"
    ]
    for plan in PLANS.values():
        tiers = ", ".join(
            f"{tier.value} {plan.limit(tier).rate_per_minute}/min burst {plan.limit(tier).burst}" for tier in Tier
        )
        blocks.append(
            f"  {usage_plan_logical_id(plan)}:\n"
            "    Type: AWS::ApiGateway::UsagePlan\n"
            "    Properties:\n"
            f"      UsagePlanName: !Sub spectra-${{Stage}}-{plan.name}\n"
            f'      Description: "Plan {plan.name} ({tiers}); edge: all tiers together"\n'
            "      ApiStages:\n"
            "        - ApiId: !Ref SpectraApi\n"
            "          Stage: !Ref SpectraApi.Stage\n"
            "      Throttle:\n"
            f"        RateLimit: {_number(plan.edge.rate_per_second)}\n"
            f"        BurstLimit: {plan.edge.burst}\n"
            "      Quota:\n"
            f"        Limit: {plan.edge.daily_quota}\n"
            "        Period: DAY\n"
        )
    return "\n".join(blocks)


def render_usage_plan_ids() -> str:
    """``USAGE_PLAN_IDS`` (and the ``UsagePlanIds`` output): each plan's usage plan id, as JSON."""
    pairs = ", ".join(f'"{plan.name}": "${{{usage_plan_logical_id(plan)}}}"' for plan in PLANS.values())
    return f"!Sub '{{{pairs}}}'"


def render_usage_plan_keys() -> str:
    """The worker's IAM resources: the keys of every plan's usage plan, and no other."""
    return "".join(
        "                - !Sub arn:${AWS::Partition}:apigateway:${AWS::Region}::/usageplans/"
        f"${{{usage_plan_logical_id(plan)}}}/keys*\n"
        for plan in PLANS.values()
    )


def render_readme_table() -> str:
    """The README's table of plans and tiers."""
    rows = [
        "| Plan | `standard` tier | `data-read` tier | Edge (all tiers, per org) |",
        "|---|---|---|---|",
    ]
    for plan in PLANS.values():
        cells = [f"{plan.limit(tier).rate_per_minute:,}/min, burst {plan.limit(tier).burst:,}" for tier in Tier]
        edge = plan.edge
        rows.append(
            f"| `{plan.name}` | {cells[0]} | {cells[1]} | "
            f"{_number(edge.rate_per_second)}/s, burst {edge.burst:,}, {edge.daily_quota:,}/day |"
        )
    return "\n".join(rows) + "\n"


def _replace_between(text: str, markers: tuple[str, str], body: str) -> str:
    begin, end = markers
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"markers {begin.strip()!r} … {end.strip()!r} not found")
    return pattern.sub(lambda _m: begin + body + end, text, count=1)


def rendered_files(root: Path = REPO_ROOT) -> dict[Path, str]:
    """Each generated file with its generated parts as the definitions say they should be."""
    template = root / "template.yaml"
    readme = root / "README.md"
    template_text = _replace_between(template.read_text(encoding="utf-8"), TEMPLATE_MARKERS, render_usage_plans())
    template_text = _replace_between(template_text, PLAN_KEYS_MARKERS, render_usage_plan_keys())
    if not PLAN_IDS.search(template_text):
        raise ValueError('no USAGE_PLAN_IDS value (!Sub \'{"standard": "${StandardUsagePlan}", ...}\') found')
    template_text = PLAN_IDS.sub(lambda _m: render_usage_plan_ids(), template_text)
    return {
        template: template_text,
        readme: _replace_between(readme.read_text(encoding="utf-8"), README_MARKERS, render_readme_table()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if a generated part has drifted")
    args = parser.parse_args(argv)
    drifted = []
    for path, text in rendered_files().items():
        if path.read_text(encoding="utf-8") == text:
            continue
        if args.check:
            drifted.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"rewrote the generated part of {path.name}")
    if drifted:
        print(f"{', '.join(drifted)} drifted from spectra.ratelimits.plans: run `make plans`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
