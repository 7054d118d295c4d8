"""Consent answers and headers of delivery.signers.consent (pure)."""

from __future__ import annotations

import unicodedata

import pytest

from delivery.errors import RowRejected
from delivery.signers.consent import (
    _SENTENCE_NO,
    _SENTENCE_YES,
    _SENTENCE_YES_BEFORE_PUNCTUATION,
    NO,
    NO_WORDS,
    YES,
    YES_WORDS,
    is_consent_header,
    read_consent,
)

LANGUAGES = {"en", "hy", "ru", "de", "fr", "es", "it", "pt", "nl", "pl", "uk"}


def test_no_word_is_both_yes_and_no() -> None:
    assert YES_WORDS.isdisjoint(NO_WORDS), YES_WORDS & NO_WORDS


def test_every_language_has_yes_and_no_words() -> None:
    assert set(YES) >= LANGUAGES and set(NO) >= LANGUAGES


def test_sentence_words_are_answer_words() -> None:
    assert _SENTENCE_YES | _SENTENCE_YES_BEFORE_PUNCTUATION <= YES_WORDS
    assert _SENTENCE_NO <= NO_WORDS


def test_table_words_are_folded_and_nfc() -> None:
    for word in YES_WORDS | NO_WORDS:
        assert word == unicodedata.normalize("NFC", word.casefold())


@pytest.mark.parametrize("answer", [
    "yes", "YES", " Yes ", "y", "Y", "true", "TRUE", "t", "on", "agree", "checked", "1",
    "ja", "J", "WAHR", "oui", "VRAI", "sí", "Sí", "si", "verdadero", "sì", "vero", "sim",
    "VERDADEIRO", "waar", "tak", "PRAWDA", "да", "Да", "ИСТИНА", "так", "Так", "ІСТИНА",
    "այո", "Այո", "ԱՅՈ", "ճիշտ", "x", "X", "✓", "✔", "✔\ufe0f", "☑", "✅",
    "Yes, you may publish my name", "Yes I agree", "yes!", "Yes - publish it", "Oui, bien sûr",
    "Sí, acepto", "Si, acconsento", "Ja, gerne", "Ja.", "Tak, zgadzam się", "Так, згоден",
    "Да, согласен", "Այո, համաձայն եմ", "Sim, concordo", "Agree.",
    "Si\u0301",  # decomposed "sí"
    "\ufeffyes", "yes\u200b",
])
def test_yes_answers(answer: str) -> None:
    assert read_consent(answer) is True


@pytest.mark.parametrize("answer", [
    "", "   ", "\u200b", "no", "NO", "n", "false", "FALSE", "f", "off", "disagree", "unchecked",
    "0", "nein", "FALSCH", "non", "FAUX", "falso", "FALSO", "não", "NÃO", "nao", "nee",
    "ONWAAR", "nie", "FAŁSZ", "нет", "Нет", "ЛОЖЬ", "ні", "ХИБНІСТЬ", "ոչ", "Ոչ", "սխալ", "☐",
    "No, keep my name private", "Nein, bitte nicht", "Non, merci", "No gracias", "Nie, dziękuję",
    "Нет, не согласен", "Ні, дякую", "Ոչ, չեմ համաձայնում", "Não, obrigado", "Nee, liever niet",
    "Disagree!",
])
def test_no_answers(answer: str) -> None:
    assert read_consent(answer) is False


@pytest.mark.parametrize("answer", [
    "maybe", "yess", "nope?", "2", "1.5", "publish", "on the list", "True story",
    "Si prega di non pubblicare",  # "si" is also Italian "one", "please" here
    "Ja nie chcę",  # "ja" is Polish "I"
    "Tak jak inni",  # "tak" is Polish "so"
    "✗", "❌", "☒", "N/A", "y es", "yesno",
    "Yes, but do not publish my name", "Yes, but don't show it", "Oui, mais pas mon nom",
    "Ja, aber nicht öffentlich", "Да, но не публикуйте", "Так, але не показуйте",
    "Այո, բայց մի հրապարակեք", "Sí, pero no publiquen mi nombre",
])
def test_unreadable_answers_reject(answer: str) -> None:
    with pytest.raises(RowRejected, match="unreadable consent answer"):
        read_consent(answer)


def test_reject_reason_is_short() -> None:
    with pytest.raises(RowRejected) as raised:
        read_consent("a very long answer that goes on and on")
    assert raised.value.reason == "unreadable consent answer 'a very long answer t'"


def test_reject_reason_never_quotes_an_address() -> None:
    with pytest.raises(RowRejected) as raised:
        read_consent("ann@example.org")
    assert "ann" not in raised.value.reason
    assert "(it holds an e-mail address)" in raised.value.reason


CONSENT_HEADERS = [
    "consent", "Consent", "CONSENT", "public", "Public", "display publicly", "Display_Publicly",
    "show name", "Show Name", "list name", "publish name", "opt in to display", "Opt-in to display",
    "Einwilligung", "Zustimmung", "consentement", "Consentimiento", "consenso", "consentimento",
    "toestemming", "zgoda", "Согласие", "Згода", "Համաձայնություն",
    "Do you agree that your name is published with the petition?",
    "May we display your name publicly?",
    "Show my name on the public list",
    "I consent to my name being shared with the recipients",
    "Ich bin einverstanden, dass mein Name veröffentlicht wird",
    "J'accepte que mon nom soit publié",
    "Acepto que se publique mi nombre",
    "Acconsento alla pubblicazione del mio nome",
    "Concordo com a publicação do meu nome",
    "Ik ga akkoord met het publiceren van mijn naam",
    "Zgadzam się na publikację mojego imienia i nazwiska",
    "Я согласен на публикацию моего имени",
    "Я згоден на оприлюднення мого імені",
    "Համաձայն եմ, որ իմ անունը հրապարակվի",
    "Allow us to list your name",
    "Publish my name",
    "Можно ли показать ваше имя?",
    "Чи можна показати ваше імʼя?",  # with the Ukrainian apostrophe U+02BC
    "Ваше ім'я можна оприлюднити?",
    "Opt-in to display publicly", "Display my name publicly", "Permission to publish",
    "Name öffentlich anzeigen", "Afficher mon nom", "Mostrar mi nombre públicamente",
    "Show name (yes/no)", "Namen veröffentlichen? (ja/nein)", "Name public?", "My name public",
    "Display my name (public list)",
]


@pytest.mark.parametrize("header", CONSENT_HEADERS)
def test_consent_headers(header: str) -> None:
    assert is_consent_header(header)


OTHER_HEADERS = [
    "I agree to receive e-mails",
    "Marketing permissions",
    "Do you agree with this petition?",
    "Email opt-in",
    "subscribed_to_mailinglist",
    "Consent to be contacted",
    "Einverstanden mit Newsletter",
    "Name",
    "First Name",
    "", "opt in", "opt-in", "Display name", "Public name", "Full name", "Signed on", "Country",
    "Last name (shown publicly)", "Your name (will be displayed)", "Display name (public)",
    "Nom public", "Public comment", "Newsletter (yes/no)",
    "Opt-in to updates", "Newsletter", "Privacy policy accepted", "I accept the terms",
    # a yes here would name someone who asked not to be: negations and hiding never count
    "Do not show my name", "Don't display my name", "Hide my name", "Sign anonymously",
    "Keep my name private", "Meinen Namen nicht veröffentlichen", "Ne pas publier mon nom",
    "No publicar mi nombre", "Non pubblicare il mio nome", "Não publicar meu nome",
    "Mijn naam niet publiceren", "Nie publikuj mojego imienia", "Не публиковать моё имя",
    "Не оприлюднювати моє ім'я", "Մի հրապարակեք իմ անունը", "Չհրապարակել իմ անունը",
    # data use, not publication
    "I consent to the processing of my name and e-mail address",
    "I agree that my name is stored",
    "Zgadzam się na otrzymywanie newslettera",
    "Я согласен получать рассылку",
]


@pytest.mark.parametrize("header", OTHER_HEADERS)
def test_other_headers(header: str) -> None:
    assert not is_consent_header(header)
