"""Synthetic journal and chat text in English and Spanish. SYNTHETIC, NOT REAL PEOPLE'S WORDS.

Sentences are composed from templates and fillers, so a cohort has thousands
of distinct texts rather than a handful. A `severity` in [0, 1] shifts the
mix the way published work describes language in depression: more negative
and absolutist words, more first-person singular, less social and activity
talk. Everyday idioms about death and dying ("dying to see it", "me muero de
ganas") and talk about suicide prevention appear at every severity, because
a detector must not fire on them. Explicit crisis language (intent, plan,
method) is written only when the simulator asks for it on a crisis day.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = ["LANGUAGES", "compose", "crisis_sentence", "idiom_sentence", "prevention_sentence"]

LANGUAGES = ("en", "es")

_FILL = {
    "en": {
        "activity": ["went for a run", "cooked dinner", "cleaned the flat", "read a few chapters", "watched a film",
                     "walked to the market", "finished the report", "played guitar", "did some gardening",
                     "went swimming", "visited the library", "fixed the bike", "baked bread", "took the bus downtown"],
        "person": ["my sister", "my brother", "my mum", "my dad", "a friend from work", "my neighbour", "my partner",
                   "my cousin", "an old classmate", "the kids", "my flatmate", "my grandmother"],
        "time": ["this morning", "after lunch", "in the evening", "tonight", "today", "yesterday", "at the weekend",
                 "before work", "around midnight"],
        "place": ["the park", "the office", "the gym", "the beach", "the café", "the clinic", "home", "the station"],
        "good": ["good", "calm", "relaxed", "proud", "grateful", "hopeful", "rested", "content", "energised"],
        "low": ["tired", "flat", "anxious", "irritable", "drained", "low", "on edge", "restless", "heavy"],
        "hopeless": ["worthless", "hopeless", "empty", "numb", "trapped", "useless", "a burden", "broken"],
        "absolute": ["always", "never", "completely", "totally", "nothing", "everything", "nobody", "constantly"],
    },
    "es": {
        "activity": ["salí a correr", "hice la cena", "limpié el piso", "leí unos capítulos", "vi una película",
                     "fui al mercado andando", "terminé el informe", "toqué la guitarra", "trabajé en el huerto",
                     "fui a nadar", "pasé por la biblioteca", "arreglé la bici", "hice pan", "cogí el autobús al centro"],
        "person": ["mi hermana", "mi hermano", "mi madre", "mi padre", "una compañera del trabajo", "mi vecino",
                   "mi pareja", "mi primo", "un antiguo compañero de clase", "los niños", "mi compañera de piso",
                   "mi abuela"],
        "time": ["esta mañana", "después de comer", "por la tarde", "esta noche", "hoy", "ayer", "el fin de semana",
                 "antes del trabajo", "a medianoche"],
        "place": ["el parque", "la oficina", "el gimnasio", "la playa", "la cafetería", "la clínica", "casa",
                  "la estación"],
        "good": ["bien", "tranquilo", "relajada", "orgulloso", "agradecida", "con esperanza", "descansado", "contenta",
                 "con energía"],
        "low": ["cansado", "apagada", "ansioso", "irritable", "agotada", "de bajón", "nervioso", "inquieta",
                "sin ganas"],
        "hopeless": ["inútil", "sin esperanza", "vacía", "entumecido", "atrapada", "una carga", "roto", "sin valor"],
        "absolute": ["siempre", "nunca", "completamente", "totalmente", "nada", "todo", "nadie", "constantemente"],
    },
}

_TEMPLATES = {
    "en": {
        "neutral": ["{time} I {activity}.", "Talked to {person} {time}.", "{time} was busy, I {activity}.",
                    "Went to {place} {time}.", "Nothing much {time}, I {activity} and then rested.",
                    "Met {person} at {place}.", "Weather was grey {time}.", "Long day at {place}."],
        "positive": ["Felt {good} after I {activity}.", "Had a lovely chat with {person} {time}, I feel {good}.",
                     "{time} I {activity} with {person} and it was fun.", "Really {good} today.",
                     "We laughed a lot at {place}.", "Slept well and feel {good}."],
        "low": ["I feel {low} {time}.", "I couldn't sleep and I'm {low}.", "I cancelled on {person} again, too {low}.",
                "I didn't want to go to {place} {time}.", "My head is foggy and I feel {low}.",
                "I skipped lunch, I'm not hungry.", "I stayed in bed most of {time}.",
                "I keep waking up at 4am and I feel {low}."],
        "hopeless": ["I {absolute} feel {hopeless}.", "Nothing I do matters, I'm {hopeless}.",
                     "I {absolute} mess everything up.", "I feel like {absolute} nobody would notice if I disappeared.",
                     "I can't see the point of anything anymore.", "I'm so tired of feeling {hopeless}.",
                     "Everything is {absolute} my fault.", "I hate myself, I am {hopeless}.",
                     "I don't know how much longer I can keep going like this."],
    },
    "es": {
        "neutral": ["{time} {activity}.", "Hablé con {person} {time}.", "{time} fue ajetreado, {activity}.",
                    "Fui a {place} {time}.", "Nada especial {time}, {activity} y luego descansé.",
                    "Quedé con {person} en {place}.", "El día estuvo gris {time}.", "Día largo en {place}."],
        "positive": ["Me sentí {good} después de que {activity}.", "Charlé con {person} {time}, me siento {good}.",
                     "{time} {activity} con {person} y fue divertido.", "Hoy me siento muy {good}.",
                     "Nos reímos mucho en {place}.", "Dormí bien y estoy {good}."],
        "low": ["Me siento {low} {time}.", "No pude dormir y estoy {low}.", "Volví a cancelar con {person}, estoy {low}.",
                "No quise ir a {place} {time}.", "Tengo la cabeza nublada y me siento {low}.",
                "No comí, no tengo hambre.", "Me quedé en la cama casi todo el día.",
                "Me despierto a las cuatro cada noche y estoy {low}."],
        "hopeless": ["Me siento {absolute} {hopeless}.", "Nada de lo que hago importa, soy {hopeless}.",
                     "Lo estropeo todo, {absolute}.", "Siento que {absolute} nadie notaría si desapareciera.",
                     "Ya no le veo sentido a nada.", "Estoy harta de sentirme {hopeless}.",
                     "Todo es culpa mía, {absolute}.", "Me odio, soy {hopeless}.",
                     "No sé cuánto tiempo más puedo seguir así."],
    },
}

_IDIOMS = {
    "en": ["I'm dying to see the new film.", "This commute is killing me.", "I almost died laughing at {person}.",
           "My phone is dead again.", "I'd kill for a coffee {time}.", "I'm dead tired after {place}.",
           "{person} killed it at the concert.", "I'm dying to try that new place near {place}.",
           "The heat is killing me {time}.", "My feet are killing me after I {activity}."],
    "es": ["Me muero de ganas de ver la película nueva.", "Me muero de risa con {person}.",
           "Me mata el calor {time}.", "Estoy muerto de cansancio después de {place}.", "Me muero de hambre.",
           "Mi móvil está muerto otra vez.", "Mataría por un café {time}.",
           "Me muero de ganas de ir a {place}.", "Los pies me están matando después de que {activity}.",
           "{person} lo bordó en el concierto, me muero."],
}

_PREVENTION = {
    "en": ["We had a suicide prevention training at work {time}.", "I shared the crisis hotline number with {person}.",
           "Watched a documentary about suicide prevention {time}.", "{person} volunteers for a suicide prevention line.",
           "Read an article about how to talk to someone who is suicidal."],
    "es": ["Tuvimos una formación sobre prevención del suicidio en el trabajo {time}.",
           "Le pasé a {person} el teléfono de la línea de crisis.",
           "Vi un documental sobre prevención del suicidio {time}.",
           "{person} es voluntaria en una línea de prevención del suicidio.",
           "Leí un artículo sobre cómo hablar con alguien que piensa en el suicidio."],
}

#: Explicit intent, plan and method. Written only on simulated crisis days.
_CRISIS = {
    "en": ["I want to kill myself.", "I don't want to be alive anymore.", "I've been thinking about ending my life.",
           "I have a plan to end it {time}.", "I've been saving pills so I can take them all at once.",
           "I keep thinking about jumping off the bridge near {place}.", "I wrote a goodbye letter to {person}.",
           "Everyone would be better off if I was dead.", "I'm going to end my life.", "I want to die.",
           "I've decided to kill myself {time}.", "I looked up how many pills it would take to die.",
           "I'm thinking about suicide all the time now.", "I don't want to wake up tomorrow, I want to die."],
    "es": ["Quiero matarme.", "Ya no quiero estar viva.", "He pensado en quitarme la vida.",
           "Tengo un plan para terminar con todo {time}.", "He estado guardando pastillas para tomármelas todas.",
           "Pienso en tirarme del puente cerca de {place}.", "Escribí una carta de despedida para {person}.",
           "Todos estarían mejor si yo estuviera muerto.", "Me voy a suicidar.", "Quiero morirme.",
           "He decidido quitarme la vida {time}.", "Busqué cuántas pastillas hacen falta para morir.",
           "Pienso en el suicidio todo el tiempo.", "No quiero despertarme mañana, quiero morir."],
}

_PREFIX = {
    "en": ["", "", "", "Honestly, ", "To be honest ", "Not sure why I'm writing this but ", "Again, ", "Tonight "],
    "es": ["", "", "", "La verdad, ", "Sinceramente, ", "No sé por qué escribo esto pero ", "Otra vez, ", "Esta noche "],
}


def _fill(template: str, lang: str, rng: random.Random) -> str:
    fill = _FILL[lang]
    out = template
    for slot, words in fill.items():
        token = "{" + slot + "}"
        while token in out:
            out = out.replace(token, rng.choice(words), 1)
    return out[0].upper() + out[1:]


def _pick(bank: Sequence[str], lang: str, rng: random.Random) -> str:
    return _fill(rng.choice(bank), lang, rng)


def idiom_sentence(lang: str, rng: random.Random) -> str:
    return _pick(_IDIOMS[lang], lang, rng)


def prevention_sentence(lang: str, rng: random.Random) -> str:
    return _pick(_PREVENTION[lang], lang, rng)


def crisis_sentence(lang: str, rng: random.Random) -> str:
    prefix = rng.choice(_PREFIX[lang])
    sentence = _pick(_CRISIS[lang], lang, rng)
    return prefix + (sentence[0].lower() + sentence[1:] if prefix else sentence)


def compose(lang: str, severity: float, rng: random.Random, *, crisis: bool = False) -> str:
    """A journal entry or chat message of one to four sentences."""
    templates = _TEMPLATES[lang]
    weights = {
        "neutral": 1.0,
        "positive": max(0.05, 0.9 - 1.2 * severity),
        "low": 0.15 + 1.2 * severity,
        "hopeless": 0.02 + 1.6 * severity ** 2,
    }
    registers = list(weights)
    sentences = []
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
        register = rng.choices(registers, [weights[r] for r in registers])[0]
        sentences.append(_pick(templates[register], lang, rng))
    if rng.random() < 0.06:
        sentences.insert(rng.randrange(len(sentences) + 1), idiom_sentence(lang, rng))
    if rng.random() < 0.01:
        sentences.insert(rng.randrange(len(sentences) + 1), prevention_sentence(lang, rng))
    if crisis:
        sentences.insert(rng.randrange(len(sentences) + 1), crisis_sentence(lang, rng))
    return " ".join(sentences)
