"""Forms of the one window's channels: the hotline desk, the public web form, the grid app."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from civicpulse.cases.models import Case, Service
from civicpulse.core.models import Area, Department

PHOTO_MAX_BYTES = 5 * 1024 * 1024
PHOTO_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


def _services():
    return Service.objects.filter(is_active=True).order_by("group", "code")


class IntakeForm(forms.Form):
    """What every channel asks: what happened, where, and (optionally) who to answer."""

    service = forms.ModelChoiceField(
        _services(),
        required=False,
        label=_("Service"),
        help_text=_("Leave empty to let the router suggest one."),
    )
    description = forms.CharField(label=_("What happened"), widget=forms.Textarea, max_length=5000)
    address = forms.CharField(label=_("Address"), max_length=300, required=False)
    lat = forms.FloatField(label=_("Latitude"), required=False, min_value=-90, max_value=90)
    lon = forms.FloatField(label=_("Longitude"), required=False, min_value=-180, max_value=180)
    name = forms.CharField(label=_("Your name"), max_length=100, required=False)
    phone = forms.RegexField(
        label=_("Phone"),
        regex=r"^\+?[0-9 \-]{5,20}$",
        required=False,
        error_messages={"invalid": _("Enter a phone number of digits.")},
    )
    email = forms.EmailField(label=_("E-mail"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = _services()

    def clean(self):
        data = super().clean()
        if (data.get("lat") is None) != (data.get("lon") is None):
            raise ValidationError(_("Give both latitude and longitude, or neither."))
        return data

    def reporter(self) -> dict:
        return {k: self.cleaned_data.get(k) or "" for k in ("name", "phone", "email")}


class PublicReportForm(IntakeForm):
    photo = forms.FileField(label=_("Photo (optional, JPEG/PNG/WebP, up to 5 MB)"), required=False)

    def clean_photo(self):
        photo = self.cleaned_data.get("photo")
        if not photo:
            return None
        if photo.size > PHOTO_MAX_BYTES:
            raise ValidationError(_("The photo is larger than 5 MB."))
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(photo) as image:
                kind = image.format
                image.verify()  # a truncated or forged file fails here
        except (
            UnidentifiedImageError,
            Image.DecompressionBombError,
            OSError,
            SyntaxError,
            ValueError,
        ):
            raise ValidationError(_("The photo is not a readable image.")) from None
        if kind not in PHOTO_FORMATS:
            raise ValidationError(_("Only JPEG, PNG or WebP photos are accepted."))
        photo.seek(0)
        photo.name = f"photo.{PHOTO_FORMATS[kind]}"  # never keep the sender's file name
        return photo


class TransferForm(forms.Form):
    department = forms.ModelChoiceField(Department.objects.all(), label=_("To department"))
    reason = forms.CharField(label=_("Reason"), max_length=500)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500)


class StepForm(forms.Form):
    action = forms.ChoiceField(
        choices=[(a, a) for a in ("accept", "dispatch", "start", "resolve", "close", "reopen")]
    )
    note = forms.CharField(max_length=500, required=False)


class QueueFilter(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("", _("open"))] + [*Case.Status.choices, ("all", _("all"))]
    )
    service = forms.ModelChoiceField(_services(), required=False)
    area = forms.CharField(required=False, max_length=15)
    channel = forms.ChoiceField(required=False, choices=[("", "—"), *Case.Channel.choices])
    overdue = forms.BooleanField(required=False)
    q = forms.CharField(required=False, max_length=50)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = _services()

    def clean_area(self):
        code = self.cleaned_data.get("area") or ""
        if code and not (code.isdigit() and Area.objects.filter(code=code).exists()):
            raise ValidationError(_("No area has this code."))
        return code


class RatingForm(forms.Form):
    rating = forms.TypedChoiceField(
        choices=[(i, i) for i in range(1, 6)], coerce=int, label=_("How satisfied are you? (1-5)")
    )
    comment = forms.CharField(
        widget=forms.Textarea, max_length=2000, required=False, label=_("Comment")
    )
