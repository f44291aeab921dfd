"""Third-party sign-in (Google, GitHub, Microsoft) only where it is configured.

allauth routes every installed provider's login and callback pages whether or not it has a
client id and secret; unconfigured, they fail with SocialApp.DoesNotExist (a 500 for anyone who
asks). Wrapped here, a provider's pages answer 404 unless that provider is configured (in
SOCIALACCOUNT_PROVIDERS, from GOOGLE_CLIENT_ID etc., or as a SocialApp row in the admin), and
the shared third-party pages (/accounts/3rdparty/...) answer 404 while none is. The check runs
per request, so configuration is read as allauth reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.providers import registry
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver

View = Callable[..., HttpResponse]
Check = Callable[[HttpRequest], bool]


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
