"""The export formats' names (pure): what `--format` accepts, known without reading their table.

The CLI lists them in its help; delivery.signers.formats holds the table itself and refuses at
import a table whose names differ from these.
"""

FORMAT_NAMES = ("action-network", "civicrm", "excel-de", "excel-fr", "google-forms", "mailchimp",
                "nationbuilder", "pytition", "typeform")
