"""The RSS feed of published releases, for newsrooms, portals and residents' readers.

Only versions that are published now are items; a correction is a new item (its own guid), and
the version it replaced drops out of the feed but stays on the release's public page. The
speaker is the office, never a person.
"""

from __future__ import annotations

from django.contrib.syndication.views import Feed
from django.urls import reverse
from django.utils.html import escape, linebreaks
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from civicpulse.opinion import releases
from civicpulse.opinion.models import Release

ITEMS = 50


class PublishedReleasesFeed(Feed):
    title = gettext_lazy("Official releases")
    description = gettext_lazy("Statements published by the city")

    def link(self) -> str:
        return reverse("releases:public_list")

    def items(self):
        return releases.public_releases()[:ITEMS]

    def item_title(self, item: Release) -> str:
        return item.title

    def item_description(self, item: Release) -> str:
        """HTML, as RSS readers expect: the plain-text body escaped first, so markup someone
        typed into a statement is shown as text and never run."""
        html = linebreaks(escape(item.body))
        if item.correction_note:
            note = _("Corrected (version %(v)d): %(note)s") % {
                "v": item.version,
                "note": item.correction_note,
            }
            html = f"<p><em>{escape(note)}</em></p>" + html
        return html

    def item_link(self, item: Release) -> str:
        return reverse("releases:public_detail", args=[item.series]) + f"#v{item.version}"

    def item_guid(self, item: Release) -> str:
        return f"urn:civicpulse:release:{item.series}:v{item.version}"

    item_guid_is_permalink = False

    def item_pubdate(self, item: Release):
        return item.published_at

    def item_author_name(self, item: Release) -> str:
        return str(releases.PUBLIC_SPEAKER)
