"""axe-core in the browser tests: `assert_accessible(page, what)` runs axe over the page as it is
now and fails with every violation (rule, impact, help and the elements) if there is one.

axe's own script (axe.min.js) comes from the pinned PyPI package axe-playwright-python
(requirements-dev.txt), read from disk: nothing is fetched at test time. It is evaluated in the
page through the DevTools protocol (page.evaluate), which the site's Content-Security-Policy
(script-src 'self', no inline scripts) does not apply to, and then `axe.run` is called here
with our options, so the check is ours: every rule axe runs by default (WCAG 2.0-2.2 A and AA,
and axe's best practices) and also the rules axe still tags "experimental" and leaves out by
default, among them "label-content-name-mismatch" (WCAG 2.5.3 Label in Name: a control's
accessible name contains the text it shows). Only AAA rules stay off, as axe has them. Nothing
on the page is excluded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import axe_playwright_python
from playwright.sync_api import Page

AXE_SOURCE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text("utf-8")
AXE_OPTIONS: dict[str, Any] = {"resultTypes": ["violations"]}
RUN_AXE_JS = """async (options) => {
  // axe's defaults, with its experimental rules switched on (AAA ones left off).
  const experimental = window.axe.getRules(["experimental"])
    .filter((rule) => !rule.tags.some((tag) => tag.endsWith("aaa")))
    .map((rule) => [rule.ruleId, { enabled: true }]);
  options = { ...options, rules: Object.fromEntries(experimental) };
  const results = await window.axe.run(document, options);
  return {
    version: results.testEngine.version,
    experimental: experimental.map(([id]) => id),
    violations: results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({
        target: n.target,
        html: n.html,
        summary: n.failureSummary,
      })),
    })),
  };
}"""


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe's violations on the page as it is now (the script is added once per document)."""
    if not page.evaluate("typeof window.axe === 'object' && typeof window.axe.run === 'function'"):
        page.evaluate(AXE_SOURCE)
    return list(page.evaluate(RUN_AXE_JS, AXE_OPTIONS)["violations"])


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']} "
            f"<{violation['helpUrl']}>"
        )
        for node in violation["nodes"]:
            lines.append(f"    at {json.dumps(node['target'])}: {node['html'][:200]}")
            for summary_line in (node["summary"] or "").splitlines():
                lines.append(f"      {summary_line}")
    return "\n".join(lines)


def assert_accessible(page: Page, what: str) -> None:
    """No axe violation on the page as shown now; `what` names the page in the failure."""
    violations = axe_violations(page)
    size = page.viewport_size or {}
    assert not violations, (
        f"axe found {len(violations)} kind(s) of violation on {what} "
        f"({size.get('width')}x{size.get('height')}, {page.url}):\n{describe(violations)}"
    )
