"""Back office of the opinion desk: sources, concerns with their rules, sensitive terms,
warning thresholds and response plan templates. Warnings and releases are read-only here: they
move through their own workflows, which keep history and check authority."""

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from civicpulse.opinion.models import (
    Concern,
    IngestBatch,
    PlanStep,
    PlanTemplate,
    QuarantinedPost,
    RejectedPush,
    Release,
    Rule,
    SensitiveTerm,
    Source,
    Warning,
    WarningPolicy,
)
from civicpulse.signals.warning import Thresholds
from civicpulse.text import rules


class RuleForm(forms.ModelForm):
    class Meta:
        model = Rule
        fields = ("name", "query", "is_active")

    def clean_query(self):
        query = self.cleaned_data["query"]
        try:
            rules.parse(query)
        except rules.RuleSyntaxError as error:
            raise forms.ValidationError(str(error)) from None
        return query


class RuleInline(admin.TabularInline):
    model = Rule
    form = RuleForm
    extra = 1


@admin.register(Concern)
class ConcernAdmin(admin.ModelAdmin):
    list_display = ("name", "category", "department")
    search_fields = ("name", "description")
    inlines = [RuleInline]


@admin.register(SensitiveTerm)
class SensitiveTermAdmin(admin.ModelAdmin):
    list_display = ("term", "weight")
    search_fields = ("term",)


class PolicyForm(forms.ModelForm):
    class Meta:
        model = WarningPolicy
        fields = ("category", "thresholds")

    def clean_thresholds(self):
        data = self.cleaned_data["thresholds"]
        try:
            return Thresholds.from_dict(data).to_dict()
        except (TypeError, ValueError) as error:
            raise forms.ValidationError(str(error)) from None


@admin.register(WarningPolicy)
class WarningPolicyAdmin(admin.ModelAdmin):
    form = PolicyForm
    list_display = ("__str__", "updated_at")


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "url", "token_prefix", "is_active", "last_polled_at")
    list_filter = ("kind", "is_active")
    actions = ["new_token"]

    @admin.action(description=_("Issue a new push token (shown once)"))
    def new_token(self, request, queryset):
        for source in queryset.filter(kind=Source.Kind.PUSH):
            token = source.issue_token()
            self.message_user(request, f"{source.name}: {token}", messages.WARNING)


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class QuarantineInline(admin.TabularInline):
    model = QuarantinedPost
    extra = 0
    can_delete = False
    readonly_fields = ("line", "field", "reason", "raw")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(IngestBatch)
class IngestBatchAdmin(ReadOnly):
    list_display = (
        "pk", "source", "name", "started_at", "accepted", "duplicates", "near_duplicates",
        "quarantined", "committed",
    )
    list_filter = ("source", "committed")
    inlines = [QuarantineInline]


@admin.register(RejectedPush)
class RejectedPushAdmin(ReadOnly):
    list_display = ("at", "client", "source", "status", "reason")
    list_filter = ("status",)


class PlanStepInline(admin.TabularInline):
    model = PlanStep
    extra = 1


@admin.register(PlanTemplate)
class PlanTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "category", "level", "is_active")
    list_filter = ("level", "is_active")
    inlines = [PlanStepInline]


@admin.register(Warning)
class WarningAdmin(ReadOnly):
    list_display = ("title", "level", "peak_level", "status", "area", "opened_at", "updated_at")
    list_filter = ("status", "level", "category")


@admin.register(Release)
class ReleaseAdmin(ReadOnly):
    list_display = ("title", "version", "status", "published_at")
    list_filter = ("status",)
