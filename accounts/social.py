"""Third-party sign-in (Google, GitHub, Microsoft) only where it is configured.

allauth routes every installed provider's login and callback pages whether or not it has a
client id and secret; unconfigured, they fail with SocialApp.DoesNotExist (a 500 for anyone who
asks). Wrapped here, a provider's pages answer 404 unless that provider is configured (in
SOCIALACCOUNT_PROVIDERS, from GOOGLE_CLIENT_ID etc., or as a SocialApp row in the admin), and
the shared third-party pages (/accounts/3rdparty/...) answer 404 while none is. The check runs
per request, so configuration is read as allauth reads it.

SocialAccountAdapter fills a person's full name from the provider's: at a third-party sign-up,
and at a later third-party sign-in of an account that has no name yet (never overwriting one
the person set).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

from allauth.socialaccount.adapter import DefaultSocialAccountAdapter, get_adapter
from allauth.socialaccount.models import SocialLogin
from allauth.socialaccount.providers import registry
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver

from accounts.names import clean_name

View = Callable[..., HttpResponse]
Check = Callable[[HttpRequest], bool]


def name_from_provider(common: dict[str, Any], extra: object) -> str:
    """The person's name as the provider gives it: its one-piece name ("name" in the common
    fields, as GitHub's; "name" or "displayName" in the raw profile, as Google's and
    Microsoft's), else given and family name joined; "" when it gives none."""
    candidates: list[object] = [common.get("name")]
    if isinstance(extra, dict):
        candidates += [extra.get("name"), extra.get("displayName")]
    first, last = clean_name(common.get("first_name")), clean_name(common.get("last_name"))
    candidates.append(f"{first} {last}")
    for candidate in candidates:
        if name := clean_name(candidate):
            return name
    return ""


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def populate_user(self, request: HttpRequest, sociallogin: SocialLogin, data: dict) -> Any:
        user = super().populate_user(request, sociallogin, data)
        user.full_name = name_from_provider(data, sociallogin.account.extra_data)
        return user

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        super().pre_social_login(request, sociallogin)
        user = sociallogin.user
        if not sociallogin.is_existing or user is None or user.full_name.strip():
            return
        try:
            provider = sociallogin.account.get_provider(request)
            common = provider.extract_common_fields(sociallogin.account.extra_data) or {}
        except Exception:  # a provider that cannot read its stored profile: no name, no harm
            common = {}
        name = name_from_provider(common, sociallogin.account.extra_data)
        if name:
            user.full_name = name
            user.save(update_fields=["full_name"])


def provider_configured(request: HttpRequest, provider_id: str) -> bool:
    return bool(get_adapter(request).list_apps(request, provider=provider_id))


def any_provider_configured(request: HttpRequest) -> bool:
    return bool(get_adapter(request).list_apps(request))


def _only_if(check: Check, view: View) -> View:
    @wraps(view)  # keeps csrf_exempt and the like, which the callback's attributes carry
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not check(request):
            raise Http404("Sign-in with this provider is not set up.")
        return view(request, *args, **kwargs)

    return guarded


def _check_for(name: str | None) -> Check | None:
    """Which configuration a named allauth URL needs, None for URLs not about third parties.
    Provider URLs are named "<provider id>_login" and "<provider id>_callback"."""
    if not name:
        return None
    if name.startswith("socialaccount_"):
        return any_provider_configured
    for provider_class in registry.get_class_list():
        if name in (f"{provider_class.id}_login", f"{provider_class.id}_callback"):
            provider_id = provider_class.id
            return lambda request: provider_configured(request, provider_id)
    return None


def guarded_urlpatterns(
    patterns: Sequence[URLPattern | URLResolver],
) -> list[URLPattern | URLResolver]:
    """allauth's URL patterns, same routes and names, the third-party ones guarded."""
    guarded: list[URLPattern | URLResolver] = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            guarded.append(
                URLResolver(
                    entry.pattern,
                    guarded_urlpatterns(entry.url_patterns),
                    entry.default_kwargs,
                    entry.app_name,
                    entry.namespace,
                )
            )
            continue
        check = _check_for(entry.name)
        if check is None:
            guarded.append(entry)
        else:
            guarded.append(
                URLPattern(
                    entry.pattern, _only_if(check, entry.callback), entry.default_args, entry.name
                )
            )
    return guarded
