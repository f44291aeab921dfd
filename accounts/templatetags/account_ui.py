"""allauth's pages in the product's words and form style (issue 12.10).

allauth names its pages and buttons in Title Case ("Sign Up", "Change Password") and Django
labels its fields with a colon; the product writes sentence case with no colons, as the rest of
meet does. The element templates under templates/allauth/elements/ pass allauth's text through
`product_wording` and render every field with `field_label` and `field_widget`.
"""

from __future__ import annotations

from django import forms, template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# allauth's own strings (the English ones its templates and forms use) and how meet says them.
# Text not listed here is shown as allauth wrote it.
WORDING = {
    "Sign In": "Sign in",
    "Sign Up": "Sign up",
    "Signup": "Sign up",
    "Sign Out": "Sign out",
    "Email Addresses": "Email addresses",
    "Add Email Address": "Add an email address",
    "Add Email": "Add",
    "Make Primary": "Make primary",
    "Re-send Verification": "Send the confirmation again",
    "Change Password": "Change password",
    "Set Password": "Set a password",
    "Password Reset": "Reset your password",
    "Reset My Password": "Send the reset link",
    "Bad Token": "This link no longer works",
    "Confirm Email Address": "Confirm your email address",
    "Verify Your Email Address": "Check your email",
    "Account Connections": "Connected accounts",
    "Add a Third-Party Account": "Connect another account",
    "Or use a third-party": "Or use another account",
    "Remember Me": "Keep me signed in",
    "Current Password": "Current password",
    "New Password": "New password",
    "New Password (again)": "New password (again)",
    "Email (again)": "Email (again)",
}


@register.filter(is_safe=True)
def product_wording(text: object) -> str:
    """allauth's text as meet words it; anything else unchanged (escaped unless safe)."""
    stripped = str(text).strip()
    if stripped in WORDING:
        return WORDING[stripped]
    if isinstance(text, SafeString):
        return mark_safe(stripped)  # nosec: already safe markup, only trimmed
    return conditional_escape(stripped)


@register.filter
def field_label(field: forms.BoundField) -> str:
    """A field's label with no trailing colon, in the product's words."""
    return product_wording(
        str(field.label or field.name.replace("_", " ").capitalize()).rstrip(":")
    )


def _ids(field: forms.BoundField) -> tuple[str, str]:
    return f"{field.auto_id}-errors", f"{field.auto_id}-help"


@register.simple_tag
def field_widget(field: forms.BoundField) -> SafeString:
    """The field's input, tied to its error and help text (aria-describedby, aria-invalid).
    The visible label says what to type, so allauth's placeholders (the label again) go."""
    errors_id, help_id = _ids(field)
    described = [errors_id] if field.errors else []
    if field.help_text:
        described.append(help_id)
    attrs: dict[str, str | bool] = {"placeholder": False}
    if described:
        attrs["aria-describedby"] = " ".join(described)
    if field.errors:
        attrs["aria-invalid"] = "true"
    return field.as_widget(attrs=attrs)


@register.filter
def is_checkbox(field: forms.BoundField) -> bool:
    return isinstance(field.field.widget, forms.CheckboxInput)
