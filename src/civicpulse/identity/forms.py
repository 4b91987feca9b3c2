"""The master index's forms: the staff search, a reveal's reason, a review decision, and
"my space" sign-in and registration.

Registration checks the *format* of what a person types and says exactly what is wrong with
it (an ID number's checksum, a mobile number's length): that tells nothing about anyone's
records. Whether the details match a record is answered only as "they do not match", never
which one did not, so the form cannot be used to learn a stranger's details one field at a time.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from civicpulse.identity import access
from civicpulse.identity.checks import check_credit_code, check_mobile, check_resident_id
from civicpulse.identity.models import Kind, ReviewPair

MAX_QUERY = 64
MAX_NAME = 64


class SearchForm(forms.Form):
    q = forms.CharField(
        label=_("Master ID, full ID number or credit code, or a name"),
        max_length=MAX_QUERY,
        strip=True,
    )


class RevealForm(forms.Form):
    reason = forms.CharField(
        label=_("Why you need the unmasked values (kept in the audit log)"),
        min_length=8,
        max_length=300,
        strip=True,
    )


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            (ReviewPair.Status.SAME, _("Same")),
            (ReviewPair.Status.DIFFERENT, _("Different")),
        ]
    )
    note = forms.CharField(label=_("Note"), required=False, max_length=500, strip=True)


class MySpaceLoginForm(AuthenticationForm):
    """Django's sign-in, admitting only people with a "my space" account (not staff)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "not_my_space": _(
            "This sign-in is for residents and enterprises registered for my space. "
            "Staff sign in on the staff page."
        ),
    }

    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if access.account_of(user) is None:
            raise ValidationError(self.error_messages["not_my_space"], code="not_my_space")


class RegisterForm(forms.Form):
    """Who you are (checked against the master index) and the sign-in you choose.

    A resident gives their ID number, name and mobile; an enterprise's legal representative
    gives the credit code, their own name and their own ID number.
    """

    kind = forms.ChoiceField(
        label=_("I register as"),
        choices=[
            (Kind.RESIDENT, _("a resident")),
            (Kind.ENTERPRISE, _("an enterprise's legal representative")),
        ],
        initial=Kind.RESIDENT,
        widget=forms.RadioSelect,
    )
    id_number = forms.CharField(label=_("Your resident ID number"), max_length=40)
    name = forms.CharField(label=_("Your name"), max_length=MAX_NAME)
    mobile = forms.CharField(
        label=_("Your mobile number (residents)"), max_length=20, required=False
    )
    credit_code = forms.CharField(
        label=_("The enterprise's unified social credit code (representatives)"),
        max_length=40,
        required=False,
    )
    username = forms.CharField(
        label=_("User name you choose"),
        max_length=150,
        validators=[get_user_model().username_validator],
    )
    password1 = forms.CharField(label=_("Password"), widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label=_("Password again"), widget=forms.PasswordInput, strip=False)

    def clean_id_number(self) -> str:
        checked = check_resident_id(self.cleaned_data["id_number"])
        if not checked:
            raise ValidationError(
                _("This ID number is not valid: %(reason)s"),
                code=checked.code,
                params={"reason": checked.reason},
            )
        return checked.value

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise ValidationError(_("This user name is taken; choose another."), code="taken")
        return username

    def clean(self) -> dict:
        data = super().clean()
        if data.get("kind") == Kind.RESIDENT:
            checked = check_mobile(data.get("mobile") or "")
            if not checked:
                self.add_error(
                    "mobile",
                    ValidationError(
                        _("This mobile number is not valid: %(reason)s"),
                        params={"reason": checked.reason},
                    ),
                )
            else:
                data["mobile"] = checked.value
        elif data.get("kind") == Kind.ENTERPRISE:
            checked = check_credit_code(data.get("credit_code") or "")
            if not checked:
                self.add_error(
                    "credit_code",
                    ValidationError(
                        _("This credit code is not valid: %(reason)s"),
                        params={"reason": checked.reason},
                    ),
                )
            else:
                data["credit_code"] = checked.value
        first, second = data.get("password1"), data.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords differ."))
        elif first:
            user = get_user_model()(username=data.get("username") or "")
            try:
                password_validation.validate_password(first, user)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return data
