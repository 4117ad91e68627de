"""Generated training sentences per language: random word sequences from small built-in word lists (no downloads)."""

from __future__ import annotations

import random

# Words chosen to cover each language's consonants and vowels, bilabials and rounded/open vowels included.
WORDS: dict[str, tuple[str, ...]] = {
    "en": tuple(
        """
        the a of to and in is it you that he was for on are with as I his they be at one have this from or had by
        but what some we can out other were all there when up use your how said an each she which do their time if
        will way about many then them write would like so these her long make thing see him two has look more day
        could go come did number sound no most people my over know water than call first who may down side been now
        find any new work part take get place made live where after back little only round man year came show every
        good me give our under name very through just form sentence great think say help low line differ turn cause
        much mean before move right boy old too same tell does set three want air well also play small end put home
        read hand port large spell add even land here must big high such follow act why ask men change went light kind
        off need house picture try us again animal point mother world near build self earth father head stand own page
        should country found answer school grow study still learn plant cover food sun four between state keep eye
        never last let thought city tree cross farm hard start might story saw far sea draw left late run while press
        close night real life few north open seem together next white children begin got walk example ease paper
        group always music those both mark often letter until mile river car feet care second book carry took science
        eat room friend began idea fish mountain stop once base hear horse cut sure watch color face wood main enough
        plain girl usual young ready above ever red list though feel talk bird soon body dog family direct pose leave
        song measure door product black short numeral class wind question happen complete ship area half rock order
        fire south problem piece told knew pass since top whole king space heard best hour better true during hundred
        five remember step early hold west ground interest reach fast verb sing listen six table travel less morning
        ten simple several vowel toward war lay against pattern slow center love person money serve appear road map
        rain rule govern pull cold notice voice unit power town fine certain fly fall lead cry dark machine note wait
        plan figure star box noun field rest correct able pound done beauty drive stood contain front teach week final
        gave green oh quick develop ocean warm free minute strong special mind behind clear tail produce fact street
        inch multiply nothing course stay wheel full force blue object decide surface deep moon island foot system busy
        test record boat common gold possible plane stead dry wonder laugh thousand ago ran check game shape equate hot
        miss brought heat snow tire bring yes distant fill east paint language among bob pop mom baby bubble maybe
        member problem bump pebble zoo shoe blue moose boom poem palm bomb puppy ample
        """.split()
    ),
    "de": tuple(
        """
        der die das und ist nicht ein eine mit von zu auf für sich dem den im sie es als auch wir ich du aber noch
        nach wie bei hat haben war mama papa baum brot milch blume mond sonne wasser haus buch bild apfel bitte danke
        morgen abend gut schön groß klein müde über schule straße zeit jahr kind frau mann leben machen gehen kommen
        sehen sprechen lesen schreiben schwimmen brauchen bleiben möbel puppe ober immer sommer winter wolke
        """.split()
    ),
    "fr": tuple(
        """
        le la les un une des et est pas que qui dans pour sur avec il elle nous vous ils bonjour merci maman papa pomme
        bouche boule beau belle bleu monde mer mère père petit grand maison temps jour nuit pain vin eau fleur chat
        chien parler manger boire voir venir partir toujours jamais peut-être pourquoi beaucoup peu bien mal rouge
        vert blanc
        """.split()
    ),
    "es": tuple(
        """
        el la los las un una y es no que en con para por de mamá papá pan boca beber bueno bonito mucho poco agua
        casa perro gato mesa mano pie playa mar sol luna tiempo día noche hablar comer vivir pequeño grande hombre mujer
        siempre nunca ahora después amigo abuela puerta verde blanco rojo azul montaña ciudad camino
        """.split()
    ),
    "it": tuple(
        """
        il lo la gli le un una e è non che di da in con per su mamma papà pane bocca bere buono bello molto poco acqua
        casa cane gatto mano piede mare sole luna tempo giorno notte parlare mangiare vivere piccolo grande uomo donna
        sempre mai adesso dopo amico nonna porta verde bianco rosso blu montagna città strada pomodoro
        """.split()
    ),
    "nl": tuple(
        """
        de het een en is niet dat van op te met voor mama papa brood boom bloem maan zon water huis boek mooi groot
        klein morgen avond goed praten lopen zwemmen blijven maken
        """.split()
    ),
}


def make_sentence(language: str, rng: random.Random, min_words: int = 4, max_words: int = 12) -> str:
    """A random sentence of 1–2 clauses in ``language`` (a key of ``WORDS``)."""
    words = WORDS[language]
    count = rng.randint(min_words, max_words)
    picked = [rng.choice(words) for _ in range(count)]
    if count > 6 and rng.random() < 0.5:
        picked[rng.randint(2, count - 3)] += ","
    text = " ".join(picked)
    return text[0].upper() + text[1:] + rng.choice([".", ".", "?", "!"])
