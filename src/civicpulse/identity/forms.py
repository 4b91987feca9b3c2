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
from civicpulse.identity.checks import check_mobile, check_resident_id
from civicpulse.identity.models import ReviewPair

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
    """Django's sign-in, admitting only people with a "my space" account (not staff).

    A staff member's name and right password get the very error a wrong password gets: a
    different one would confirm a staff password to whoever tries it here, with no lockout
    of the staff sign-in to stop them.
    """

    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if access.account_of(user) is None:
            raise self.get_invalid_login_error()


class RegisterForm(forms.Form):
    """Who you are (checked against the master index) and the sign-in you choose.

    Only residents register here, with their ID number, name and mobile. Enterprise accounts
    are issued by the service hall after an in-person check (``access.issue_account``): the
    market register holds no ID number of the legal representative, so their name alone would
    let any namesake in. Whether the user name is free is told only once the identity matched
    (in the view), so the form cannot be used to learn who has an account.
    """

    id_number = forms.CharField(label=_("Your resident ID number"), max_length=40)
    name = forms.CharField(label=_("Your name"), max_length=MAX_NAME)
    mobile = forms.CharField(label=_("Your mobile number"), max_length=20)
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

    def clean_mobile(self) -> str:
        checked = check_mobile(self.cleaned_data["mobile"])
        if not checked:
            raise ValidationError(
                _("This mobile number is not valid: %(reason)s"),
                code=checked.code,
                params={"reason": checked.reason},
            )
        return checked.value

    def clean(self) -> dict:
        data = super().clean()
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

    def forget_id_number(self) -> None:
        """Leave the typed ID number out of the page shown again (errors are kept): a refused
        form must not put a whole ID number back on a shared screen or in a cache."""
        self.data = self.data.copy()
        self.data["id_number"] = ""
