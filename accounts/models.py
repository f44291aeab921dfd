"""The user model: signs in by email; carries the preferences meetings need."""

from __future__ import annotations

import secrets
import zoneinfo

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone: {value}")


MAX_TIME_ZONE_LENGTH = 64
MAX_FULL_NAME_LENGTH = 100  # what a call shows whole (rooms.access.MAX_CALL_NAME_LENGTH)


def new_calendar_token() -> str:
    return secrets.token_urlsafe(32)


class EmailUserManager(UserManager["User"]):
    """Users are created by email; the username column stays but is optional.

    The `type: ignore`s below: Django's UserManager takes the username first and requires it;
    this manager's signatures are email-first on purpose (createsuperuser calls them so).
    """

    def create_user(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra: object
    ) -> User:
        return super().create_user(
            username=None,  # type: ignore[arg-type]
            email=self.normalize_email(email),
            password=password,
            **extra,
        )

    def create_superuser(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra: object
    ) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)

    def _create_user(
        self, username: str | None, email: str, password: str | None, **extra: object
    ) -> User:
        user = self.model(email=email, username=username, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user


class User(AbstractUser):
    # Optional (NULL, so that many users may have none): people sign in with their email.
    username = models.CharField(  # type: ignore[assignment]
        max_length=150, blank=True, null=True, unique=True
    )
    email = models.EmailField("email address", unique=True)
    # The name others see (calls, chat, meeting pages, e-mails): one field, as people write
    # their name, not split into first and last. Asked at sign-up, editable in settings, filled
    # from a third-party sign-in's name. first_name/last_name stay (Django's; allauth fills them
    # from a provider) and only stand in while this is empty.
    full_name = models.CharField("full name", max_length=MAX_FULL_NAME_LENGTH, blank=True)
    time_zone = models.CharField(
        max_length=MAX_TIME_ZONE_LENGTH, default="UTC", validators=[validate_time_zone]
    )
    time_zone_chosen = models.BooleanField(
        default=False,
        help_text="The person chose their time zone (in settings, or by answering the proposal "
        "of their browser's zone); the browser's zone is not proposed again.",
    )
    reminder_minutes = models.PositiveSmallIntegerField(
        default=10, help_text="Minutes before a meeting starts to send a reminder email."
    )
    calendar_token = models.CharField(
        max_length=64,
        unique=True,
        default=new_calendar_token,
        help_text="Secret that authorizes the personal calendar feed URL.",
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    # The stubs type `objects` as AbstractUser's UserManager[Self]; ours is a subclass of it.
    objects = EmailUserManager()  # type: ignore[misc]

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name.strip() or super().get_full_name()

    def get_short_name(self) -> str:
        return self.get_full_name() or self.email_local_part

    @property
    def email_local_part(self) -> str:
        return self.email.split("@")[0]

    @property
    def display_name(self) -> str:
        """How this person is shown everywhere (calls, chat, meeting pages, e-mails, the default
        meeting title): their full name, else the part of their address before the "@"."""
        return self.get_full_name() or self.email_local_part
