"""Consent answers and column headers of signer exports → named or withheld (pure).

No I/O. A signer who did not say yes is never named, so every doubt falls on the side of
withholding or of rejecting the row, never of naming.

Answers (`read_consent`), after strip, case folding and NFC:
- Empty is False: an empty cell in a consent column is not a yes.
- Yes/no words of English, Armenian, Russian, Ukrainian, German, French, Spanish, Italian,
  Portuguese, Dutch and Polish (`YES`, `NO`), spreadsheet booleans as each language's Excel
  writes them (TRUE/FALSE, WAHR/FALSCH, VRAI/FAUX, ИСТИНА/ЛОЖЬ, ІСТИНА/ХИБНІСТЬ…), "1"/"0",
  and checkbox marks ("x", "✓", "✔", "☑", "✅" are yes; an empty box "☐" is no).
  No word is yes in one language and no in another.
- A form's full option text is read by its first word when that word is a yes/no word of two
  letters or more followed by punctuation ("Yes, you may publish my name", "Nein, bitte
  nicht") or by a space ("Yes I agree"). Yes words with another everyday meaning ("si" is
  also Italian "one"/Spanish "if", "ja" Polish "I", "tak"/"так" also "so") count only when
  punctuation follows them, and booleans, "on"/"off" and marks never start a sentence. A yes
  sentence that negates later ("Yes, but not my name", "Oui, mais pas mon nom") is unreadable.
- Anything else raises RowRejected("unreadable consent answer …"), quoting at most 20
  characters, and never an e-mail-like value.

Headers (`is_consent_header`), after NFC, case folding and punctuation to spaces:
- A plain consent header (`PLAIN_HEADERS`: "consent", "public", "show name", "zustimmung",
  "согласие"…) as the whole header.
- Or a question that asks to show the name: a consent word (consent, agree, allow, permission,
  accept… in the languages above) with a name or publishing word (name, publish, public,
  display, show, list…), or a publishing word with a name word. Words match by their stem, so
  inflections count ("veröffentlicht", "publicação", "імені").
- Never when the header also speaks of contact or data use (e-mail, newsletter, marketing,
  contacted, processing…) or negates or hides ("not", "nicht", "anonymous", "hide", "не"…):
  "Do not show my name" must never be read as a yes to being named. Nor a name field of a
  form ("Display name", "Public name", "Last name (shown publicly)": a name label before a note
  in brackets). A plain "opt in" is no consent header (most opt-ins are to e-mail); "opt" with
  a publishing or name word is ("Opt in to display publicly").
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping

from delivery.errors import RowRejected
from delivery.signers.normalize import clean_text, quote_value

# Per language, words separated by spaces. The yes and no sets must stay disjoint
# (tests/signers/test_consent.py checks it).
YES: Mapping[str, str] = {
    "en": "yes y true t on agree checked",
    "de": "ja j wahr",
    "fr": "oui vrai",
    "es": "sí si s verdadero",
    "it": "sì si vero",
    "pt": "sim s verdadeiro",
    "nl": "ja j waar",
    "pl": "tak t prawda",
    "ru": "да истина",
    "uk": "так істина",
    "hy": "այո ճիշտ",
    "marks": "1 x ✓ ✔ ☑ ✅",
}
NO: Mapping[str, str] = {
    "en": "no n false f off disagree unchecked",
    "de": "nein n falsch",
    "fr": "non faux",
    "es": "no n falso",
    "it": "no non falso",
    "pt": "não nao n falso",
    "nl": "nee n onwaar",
    "pl": "nie n fałsz",
    "ru": "нет ложь",
    "uk": "ні хибність",
    "hy": "ոչ սխալ",
    "marks": "0 ☐",
}
_VARIATION_SELECTOR = "\ufe0f"  # "✔️" is "✔" drawn as an emoji


def _words(*lists: str) -> frozenset[str]:
    return frozenset(word for words in lists for word in words.split())


# Words that may start a sentence ("Yes, …"): the answer words proper, no booleans or marks.
_SENTENCE_YES = _words("yes agree oui sí sim да այո")
_SENTENCE_YES_BEFORE_PUNCTUATION = _words("ja si sì tak так")
_SENTENCE_NO = _words("no disagree nein non não nao nee nie нет ні ոչ")
YES_WORDS = _words(*YES.values())
NO_WORDS = _words(*NO.values())
_ANSWERS = {**dict.fromkeys(YES_WORDS, True), **dict.fromkeys(NO_WORDS, False)}


def _key(text: str) -> str:
    folded = unicodedata.normalize("NFC", clean_text(text)).casefold()
    return unicodedata.normalize("NFC", folded).replace(_VARIATION_SELECTOR, "")


# A yes sentence that goes on to negate ("Yes, but not my name") is not read as a yes.
_NEGATIONS = _words("not don doesn never no nicht kein keine nie niemals ne pas jamais non nunca "
                    "mai não nao niet geen nooit не нет ні ոչ մի")
_WORD = re.compile(r"[^\W\d_]+")


def _negates(rest: str) -> bool:
    return any(w in _NEGATIONS or w.startswith("չ") for w in _WORD.findall(rest))


def _first_word(key: str) -> bool | None:
    """The answer a sentence starts with, or None."""
    end = 0
    while end < len(key) and key[end].isalpha():
        end += 1
    if end < 2 or end == len(key):
        return None
    word, rest = key[:end], key[end:]
    punctuation = unicodedata.category(rest.lstrip(" ")[:1] or " ").startswith("P")
    if not (punctuation or rest[0] == " "):
        return None
    if word in _SENTENCE_NO:
        return False
    yes = word in _SENTENCE_YES or (word in _SENTENCE_YES_BEFORE_PUNCTUATION and punctuation)
    return True if yes and not _negates(rest) else None


# A form export repeats a few option texts a million times: read each once.
@functools.lru_cache(maxsize=4096)
def _read_text(text: str) -> bool | None:
    key = _key(text)
    if not key:
        return False
    answer = _ANSWERS.get(key)
    return _first_word(key) if answer is None else answer


def read_consent(text: str) -> bool:
    """A consent cell → True (may be named) or False (withheld); RowRejected if unreadable."""
    answer = _ANSWERS.get(text.strip().casefold())
    if answer is None:
        answer = _read_text(text)
    if answer is None:
        raise RowRejected(f"unreadable consent answer {quote_value(text, 20)}")
    return answer


# Header words per kind and language; a trailing "*" matches any word starting so.
_CONSENT = (
    "consent* agree* allow* permi* accept* opt "
    "einverstanden einverständnis* einwillig* zustimm* stimme erlaub* akzeptier* genehmig* "
    "consent* autoris* accord "
    "acept* consient* autoriz* acuerdo conformidad "
    "acconsent* consens* autorizz* accett* accordo "
    "concord* aceit* "
    "akkoord toestemm* instemm* accepteer* toestaan "
    "zgod* zgadza* akceptuj* pozwal* zezwal* "
    "соглас* соглаш* разреш* "
    "згод* погодж* дозвол* дозвіл "
    "համաձայն* թույլ*"
)
_PUBLISH = (
    "publi* display* show* list listed listing visible appear* "
    "veröffentlich* öffentlich* anzeig* angezeigt zeig* gezeigt nenn* genannt aufgeführt "
    "aufführ* aufgelistet liste sichtbar "
    "affich* montr* figur* "
    "mostr* muestr* aparec* aparez* lista difund* difusión "
    "pubblic* visualizz* elenco visibil* divulg* "
    "públic* exib* divulga* visível "
    "openba* toon* getoond weergeg* weergav* vermeld* lijst zichtbaar "
    "wyświetl* pokaz* ujawni* liście widoczn* "
    "публик* опубликов* публичн* показ* отображ* список списке видим* обнарод* "
    "оприлюдн* публік* опублік* публічн* відображ* списку "
    "հրապարակ* ցուցադր* ցույց ցանկ* հանրային*"
)
_NAME = (
    "name names surname surnames "
    "namen namens vorname vornamen nachname nachnamen "
    "nom noms prénom prénoms "
    "nombre nombres apellido* "
    "nome nomi cognome cognomi "
    "nomes sobrenome* "
    "naam achternaam voornaam "
    "imię imienia imieniem nazwisk* "
    "имя имени именем фамили* фио "
    "ім імені іменем прізвищ* "
    "անուն* անվան* ազգանուն*"
)
_VETO = (
    "not dont don doesn didn won never no without hide* hidden anonym* private* withhold* "
    "omit* mail* email* newsletter* marketing contact* receiv* subscri* update* news sms "
    "phone* telephone* process* stor* "
    "nicht kein* nie niemals ohne verberg* versteck* privat* werbung kontakt* rundbrief* "
    "verarbeit* speicher* erhalt* zusend* benachrichtig* "
    "ne pas jamais sans cach* masqu* privé* confidentiel* infolettre* courriel* recevoir "
    "traitement* abonn* non "
    "nunca sin ocult* anónim* privad* boletín boletin correo* recibir tratamiento* suscri* "
    "mai senza nascond* anonim* riservat* posta contatt* ricevere trattamento* iscri* "
    "não nao sem escond* anônim* boletim contat* receber tratamento* inscri* "
    "niet geen nooit zonder anoniem* privé nieuwsbrief* ontvang* verwerk* "
    "bez ukry* prywatn* otrzym* przetwarz* subskryp* "
    "не нет без скры* аноним* приватн* рассылк* новост* контакт* связ* получ* обработк* "
    "подписк* "
    "ні прихов* сховат* анонім* розсилк* новин* отрим* обробк* підписк* "
    "ոչ մի առանց չ* թաքց* անանուն* գաղտնի* նորություն* տեղեկագ* էլ փոստ* ստանալ*"
)
PLAIN_HEADERS = frozenset((
    "consent", "public", "display publicly", "show name", "list name", "publish name",
    "opt in to display", "show my name", "publish my name", "name public", "consent to display",
    "einwilligung", "zustimmung", "öffentlich", "consentement", "consentimiento",
    "público", "publico", "consenso", "pubblico", "consentimento", "toestemming", "publiek",
    "openbaar", "zgoda", "publiczny", "согласие", "публично", "згода", "публічно",
    "համաձայնություն",
))
# Form fields that hold the name to print, not an answer.
_NAME_COLUMNS = frozenset((
    "display name", "displayed name", "public name", "published name", "name to display",
    "name to be displayed", "name for display", "name to publish", "name to show", "listed name",
    "screen name", "anzeigename", "öffentlicher name", "nom affiché", "nom public",
    "nombre público", "nome pubblico", "nome público",
))
# Words that, with a name word, make a name field's label before a note in brackets:
# "Last name (shown publicly)", "Your name (will be displayed)".
_NAME_LABEL = _words(
    "first last full given family middle your my signer ihr dein mein vollständiger votre ton "
    "mon complet tu su mi completo il tuo suo seu teu je uw twoje twój ваше ваш ваша твоё твое "
    "твоє ձեր քո")


class _Words:
    """Whole words and word stems of one kind."""

    def __init__(self, spec: str) -> None:
        words = spec.split()
        self.exact = frozenset(w for w in words if not w.endswith("*"))
        self.stems = tuple(w[:-1] for w in words if w.endswith("*"))

    def any_in(self, tokens: Iterable[str]) -> bool:
        return any(t in self.exact or t.startswith(self.stems) for t in tokens)


_CONSENT_WORDS = _Words(_CONSENT)
_PUBLISH_WORDS = _Words(_PUBLISH)
_NAME_WORDS = _Words(_NAME)
_VETO_WORDS = _Words(_VETO)
_IN_WORD_MARKS = frozenset("\u055b\u055c\u055e")  # Armenian emphasis, exclamation, question


def _alternatives(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


# "(yes/no)" notes the answers, it negates nothing.
_ANSWER_NOTE = re.compile(rf"(?<!\w)(?:{_alternatives(YES_WORDS)})\s*/\s*(?:{_alternatives(NO_WORDS)})(?!\w)")


def _header_tokens(header: str) -> list[str]:
    text = unicodedata.normalize("NFC", unicodedata.normalize("NFC", header).casefold())
    text = _ANSWER_NOTE.sub(" ", text)
    chars: list[str] = []
    for ch in text.replace("\u02bc", "'"):
        if ch in _IN_WORD_MARKS:
            continue
        chars.append(" " if unicodedata.category(ch)[0] in "PSZC" else ch)
    return "".join(chars).split()


def _is_name_label(header: str) -> bool:
    """Whether the header, up to a note in brackets, labels a name field."""
    label = _header_tokens(header.partition("(")[0].partition("[")[0])
    return " ".join(label) in _NAME_COLUMNS or (_NAME_WORDS.any_in(label) and all(
        t in _NAME_LABEL or _NAME_WORDS.any_in((t,)) for t in label))


def is_consent_header(header: str) -> bool:
    """Whether a column header asks "may we show/publish your name?"."""
    tokens = _header_tokens(header)
    joined = " ".join(tokens)
    if joined in PLAIN_HEADERS:
        return True
    if _VETO_WORDS.any_in(tokens) or _is_name_label(header):
        return False
    publish, name = _PUBLISH_WORDS.any_in(tokens), _NAME_WORDS.any_in(tokens)
    return (publish and name) or (_CONSENT_WORDS.any_in(tokens) and (publish or name))
