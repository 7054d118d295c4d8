"""Seed → realistic synthetic signers in many scripts, for the demo and the benchmarks (pure).

The names are common given names and surnames of each region; e-mails are on example.org.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Region:
    country: str
    cities: tuple[str, ...]
    given: tuple[str, ...]
    family: tuple[str, ...]
    weight: int
    family_first: bool = False
    joiner: str = " "


REGIONS = (
    Region("Armenia", ("Երևան", "Գյումրի", "Վանաձոր", "Yerevan"),
           ("Անի", "Արամ", "Նարե", "Տիգրան", "Լուսինե", "Հայկ", "Մարիամ", "Դավիթ", "Gayane", "Armen"),
           ("Հակոբյան", "Պետրոսյան", "Սարգսյան", "Գրիգորյան", "Մանուկյան", "Avetisyan", "Khachatryan"), 18),
    Region("Russia", ("Москва", "Санкт-Петербург", "Казань", "Новосибирск"),
           ("Анна", "Иван", "Мария", "Дмитрий", "Екатерина", "Алексей", "Ольга", "Сергей"),
           ("Иванова", "Смирнов", "Кузнецова", "Попов", "Соколова", "Лебедев", "Новикова"), 14),
    Region("Germany", ("Berlin", "Hamburg", "München", "Köln"),
           ("Lena", "Jonas", "Marie", "Lukas", "Sophie", "Felix", "Jürgen", "Anneliese"),
           ("Müller", "Schmidt", "Schneider", "Fischer", "Weiß", "Größer", "Becker"), 10),
    Region("France", ("Paris", "Lyon", "Marseille", "Nantes"),
           ("Chloé", "Léa", "Hugo", "Zoë", "Étienne", "Noémie", "François"),
           ("Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Girard"), 8),
    Region("United Kingdom", ("London", "Manchester", "Edinburgh", "Cardiff"),
           ("Olivia", "James", "Amelia", "Oliver", "Siobhán", "Rhys"),
           ("Smith", "Jones", "Taylor", "O'Brien", "Williams", "Davies"), 8),
    Region("Georgia", ("თბილისი", "ბათუმი", "ქუთაისი"),
           ("ნინო", "გიორგი", "მარიამ", "დავით", "ანა", "ლუკა"),
           ("ბერიძე", "კაპანაძე", "გელაშვილი", "მამედოვი", "ლომიძე"), 5),
    Region("Greece", ("Αθήνα", "Θεσσαλονίκη", "Πάτρα"),
           ("Μαρία", "Γιώργος", "Ελένη", "Νίκος", "Κατερίνα", "Δημήτρης"),
           ("Παπαδοπούλου", "Παπαδόπουλος", "Οικονόμου", "Γεωργίου", "Νικολάου"), 4),
    Region("Egypt", ("القاهرة", "الإسكندرية", "الجيزة"),
           ("محمد", "فاطمة", "أحمد", "مريم", "علي", "نور"),
           ("حسن", "إبراهيم", "عبد الله", "السيد", "مصطفى"), 4),
    Region("Israel", ("תל אביב", "ירושלים", "חיפה"),
           ("נועה", "דוד", "מיכל", "יוסף", "שרה", "אורי"),
           ("כהן", "לוי", "מזרחי", "פרץ", "ביטון"), 3),
    Region("China", ("北京", "上海", "广州", "成都"),
           ("伟", "芳", "娜", "秀英", "敏", "静"), ("王", "李", "张", "刘", "陈", "杨"), 4,
           family_first=True, joiner=""),
    Region("Japan", ("東京", "大阪", "京都", "札幌"),
           ("さくら", "陽翔", "結衣", "蓮", "美咲", "大翔"), ("佐藤", "鈴木", "高橋", "田中", "渡辺"), 3,
           family_first=True),
    Region("South Korea", ("서울", "부산", "인천"),
           ("지민", "서연", "민준", "하은", "도윤"), ("김", "이", "박", "최", "정"), 3,
           family_first=True, joiner=""),
    Region("India", ("नई दिल्ली", "मुंबई", "जयपुर", "Bengaluru"),
           ("आरव", "प्रिया", "अनन्या", "राहुल", "Priya", "Arjun"),
           ("शर्मा", "वर्मा", "गुप्ता", "सिंह", "Patel", "Iyer"), 5),
    Region("Brazil", ("São Paulo", "Rio de Janeiro", "Brasília"),
           ("João", "Ana", "Luíza", "Pedro", "Mariana"), ("Silva", "Santos", "Oliveira", "Conceição"), 5),
    Region("Poland", ("Warszawa", "Kraków", "Łódź", "Gdańsk"),
           ("Zofia", "Jakub", "Małgorzata", "Łukasz", "Agnieszka"),
           ("Nowak", "Kowalska", "Wiśniewski", "Wójcik", "Żak"), 4),
    Region("Turkey", ("İstanbul", "Ankara", "İzmir"),
           ("Ayşe", "Mehmet", "Elif", "Mustafa", "Zeynep"), ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik"), 3),
)

EMOJI_NAMES = ("Alex 🌈", "Sam 🏳️‍🌈", "Kim ✨")


def sample_rows(count: int, *, seed: int = 2026, end: datetime, days: int = 60,
                consent_rate: float = 0.97) -> Iterator[dict[str, object]]:
    """Signer fields (name, email, city, country, signed_at, consent) ready for intake."""
    rng = random.Random(seed)
    weights = [r.weight for r in REGIONS]
    start = end - timedelta(days=days)
    span = (end - start).total_seconds()
    offsets = sorted(rng.random() * span for _ in range(count))
    for i, offset in enumerate(offsets):
        region = rng.choices(REGIONS, weights)[0]
        given, family = rng.choice(region.given), rng.choice(region.family)
        parts = (family, given) if region.family_first else (given, family)
        name = region.joiner.join(parts)
        if i % 997 == 13:
            name = rng.choice(EMOJI_NAMES)
        yield {
            "name": name,
            "email": f"signer{seed}.{i}@example.org",
            "city": rng.choice(region.cities),
            "country": region.country,
            "signed_at": start + timedelta(seconds=offset),
            "consent": rng.random() < consent_rate,
        }
