"""Sentence grammars for the embedded corpus: an assistant / smart-home domain with intents and slots.

Each generated utterance has a transcript (lower-case words, numbers and times spelled out), an intent and a
slot-tagged transcript. Three families:
- FSC-like commands: the intent is action|object|location (spaces in a value become '_'), e.g.
  `activate|lights|kitchen`; their slot-tagged line is the plain transcript (FSC has no slot spans).
- SNIPS-like queries: one intent label (`set_alarm`); slot values are tagged the Audio-SNIPS way (SUPERB):
  `set an alarm for B-time seven thirty in the morning E-time`.
- Chit-chat (`chat`, no slots) and long requests (a context clause + a command or query, the inner intent kept),
  so that lengths run from 2 to 25 words.

Length: over 500 lines because most of the file is data (the word lists and templates of the five families);
the template expansion itself is about 150 lines.

Templates use a small notation:
    (a|b|)          one alternative, chosen uniformly (an empty one makes the group optional); groups nest
    {type}          a slot of `type`, its value drawn from LEXICON[type]; {type=source} draws from LEXICON[source]
    <name>          LEXICON[name] expanded in place, untagged (or as part of the enclosing slot's value)
    , ? .           kept in the text espeak reads (pauses, question intonation), dropped from the transcripts
Everything draws from the `random.Random` passed in, so a seed fixes the output.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from toolkit.synth.numbers import (
    WEEKDAYS,
    calendar_date,
    clock_time,
    duration,
    small_number,
    temperature,
)

# ------------------------------------------------------------------------------------------------------ the lexicon

_FIRST_NAMES = (
    "anna ben carlos diana emma frank grace hannah ivan julia kevin laura maria nina oliver peter rachel sam "
    "sophie thomas victor william zoe david lucy martin alice george helen james kate leo mia noah paul"
).split()
_LAST_NAMES = "miller garcia smith brown taylor walker moore clark lopez king wright hill green baker".split()
_ADJECTIVES = (
    "golden silver quiet broken hidden endless electric gentle wild lonely bright dark secret lost frozen burning "
    "sweet crimson velvet distant"
).split()
_NOUNS = (
    "river garden highway mountain ocean window island forest engine shadow mirror letter harbor city morning "
    "winter summer heart dream train"
).split()

LEXICON: dict[str, list[str] | Callable[[random.Random], str]] = {
    # --- values with generated numbers
    "time": clock_time,
    "clock": clock_time,
    "duration": duration,
    "party_size": small_number,
    "temperature": temperature,
    "calendar_date": calendar_date,
    "date": [
        "today",
        "tomorrow",
        "tonight",
        "this weekend",
        "this evening",
        "tomorrow morning",
        "the day after tomorrow",
        "next week",
        "(on|next|this) (" + "|".join(WEEKDAYS) + ")",
        "on <calendar_date>",
        "in (two|three|four) days",
    ],
    "rating": ["(one|two|three|four|five)"],
    "best_rating": ["(five|ten)"],
    # --- names, places, things
    "first_name": list(_FIRST_NAMES),
    "contact": ["<first_name>", "<first_name>", "<first_name> <last_name>", "my (mother|father|sister|brother|boss)"],
    "last_name": list(_LAST_NAMES),
    "city": [
        "(london|paris|berlin|madrid|rome|tokyo|boston|chicago|denver|seattle|dallas|miami|toronto|sydney|dublin)",
        "(lisbon|vienna|prague|oslo|cairo|mumbai|amsterdam|brussels|geneva|edinburgh|glasgow|manchester|atlanta)",
        "(phoenix|houston|montreal|vancouver|singapore|bangkok|nairobi|lagos|seoul|moscow|athens|warsaw|helsinki)",
        "(new york|los angeles|san francisco|cape town|mexico city|buenos aires|hong kong|new delhi)",
    ],
    "condition": ["(rain|snow|be sunny|be windy|be cloudy|storm|be foggy|freeze|hail)"],
    "weather_adjective": ["(hot|cold|warm|chilly|humid|windy|sunny|rainy)"],
    "genre": [
        "(jazz|rock|pop|classical|hip hop|country|blues|reggae|folk|metal|soul|disco|electronic|ambient|punk)",
        "(gospel|latin|indie|funk|opera|piano|acoustic)",
    ],
    "artist": ["<first_name> <last_name>", "the <adjective> <noun>s", "<first_name> and the <noun>s"],
    "song": ["<adjective> <noun>", "the <noun> song", "(my|your|our) <adjective> <noun>", "<noun> of <noun>s"],
    "album": ["<adjective> <noun>s", "songs from the <noun>"],
    "playlist": [
        "(workout|road trip|chill|dinner party|study|sleep|morning|summer hits|rainy day|throwback|favorites)",
        "(party|focus|running|coffee shop|cooking|weekend|relaxing)",
    ],
    "adjective": list(_ADJECTIVES),
    "noun": list(_NOUNS),
    "cuisine": [
        "(italian|chinese|mexican|indian|thai|japanese|french|greek|korean|vietnamese|spanish|lebanese|turkish)",
        "(ethiopian|american|vegetarian|seafood)",
    ],
    "restaurant_type": ["(restaurant|pizza place|steakhouse|sushi bar|cafe|bistro|diner|burger place|tapas bar|pub)"],
    "restaurant_name": ["the <adjective> (spoon|fork|table|kitchen|garden|lantern)"],
    "poi": [
        "(the station|my office|the airport|the museum|the park|the harbor|downtown|the university|the hotel|home)",
    ],
    "task": [
        "(call|email|text) <first_name>",
        "buy <grocery>",
        "(pick up the kids|water the plants|take out the trash|feed the cat|walk the dog|charge my phone)",
        "(pay the electricity bill|book a dentist appointment|renew my passport|return the library books)",
        "(take my medicine|send the report|clean the garage|check the oil in the car|lock the back door)",
        "(wish <first_name> a happy birthday|bring an umbrella|defrost the chicken|prepare the slides)",
        "(practice the piano|finish my homework|cancel the gym membership|order a birthday cake)",
    ],
    "grocery": [
        "(milk|eggs|bread|butter|cheese|apples|bananas|oranges|tomatoes|potatoes|onions|garlic|carrots|rice)",
        "(pasta|flour|sugar|coffee|tea|yogurt|chicken|salmon|cereal|honey|olive oil|lemons|strawberries|spinach)",
        "(toilet paper|dish soap|batteries|light bulbs|paper towels|toothpaste|shampoo|peanut butter|dog food)",
        "(orange juice|sparkling water|cat litter|frozen peas|ice cream|tortillas|mushrooms|cucumbers)",
    ],
    "item": [
        "<grocery>",
        "<grocery>",
        "(two|three|four|six) (bottles|cans|bags|boxes|packs) of <grocery>",
        "(a dozen eggs|a loaf of bread|a bag of rice|a jar of honey)",
    ],
    "list_name": ["(shopping|grocery|to do|packing|christmas|hardware|party)"],
    "message": [
        "i am running (a few minutes|ten minutes|a little) late",
        "i will be home (soon|for dinner|after work|by <clock>)",
        "(dinner is ready|i am on my way|call me back|the meeting is cancelled|happy birthday)",
        "(see you at the station|do not forget the tickets|i left the keys under the mat|thank you for the flowers)",
        "(can we meet tomorrow|the package arrived|i miss you|good luck with the interview)",
    ],
    "news_topic": ["(sports|business|technology|science|political|health|entertainment|world|local|financial)"],
    "news_source": ["the (morning|evening|daily|national) (post|herald|times|journal|radio)"],
    "movie": ["the <adjective> <noun>", "return of the <noun>", "<noun>s of <city>", "the last <noun>"],
    "cinema": ["the (odeon|rex|regal|grand|plaza|starlight|palace|empire) (cinema|theater)"],
    "book": ["the <adjective> <noun>", "a <noun> in <city>", "<noun>s and <noun>s", "the <noun> keeper"],
    "event": [
        "(meeting|dentist appointment|doctor appointment|lunch|dinner|phone call|haircut|yoga class)",
        "(piano lesson|team meeting|job interview|birthday party|parent teacher meeting|flight|car service)",
    ],
    "language": ["(english|german|french|spanish|chinese|korean|japanese|italian|portuguese|russian|dutch|swedish)"],
    "phrase": [
        "(good morning|thank you very much|where is the station|how much does this cost|nice to meet you)",
        "(see you tomorrow|i am hungry|the bill please|where is the bathroom|happy new year)",
    ],
    # --- untagged glue
    "please_pre": ["", "", "", "please", "could you", "can you", "would you", "hey", "okay", "i want you to"],
    "please_post": ["", "", "", " please", " thanks", " now", " right now", " for me"],
    "query_pre": ["", "", "", "hey", "okay", "tell me", "can you tell me", "i want to know", "do you know"],
    "context": [
        "i am (about to|going to) (cook dinner|go to bed|leave for work|start a meeting|watch a movie|read a book)",
        "my (mother|friends|neighbors|parents) (is|are) coming over (tonight|later|this evening)",
        "it has been a (long|busy|strange) day (at work|at school|)",
        "(before i forget|when you get a chance|sorry to bother you|good morning|good evening|one more thing)",
        "i just got home (from work|from the gym|from the airport|) and i am (tired|exhausted|freezing|hungry)",
        "we are having (a party|guests|a family dinner|a quiet night in) (tonight|this weekend|later)",
    ],
    "reason": [
        "because i am (busy|in a hurry|not at home|on the phone|cooking)",
        "(if that is okay|if you do not mind|as soon as possible|when you can|thank you so much)",
        "so i do not (forget|miss it|have to do it later)",
    ],
}


# ------------------------------------------------------------------------------------------ FSC-like commands

_ROOMS = {
    "kitchen": "kitchen",
    "bedroom": "bedroom",
    "washroom": "(washroom|bathroom)",
    "living_room": "(living room|lounge)",
}
_OBJECTS = {
    "lights": "(lights|lighting|light)",
    "lamp": "lamp",
    "music": "music",
    "heat": "(heat|heating)",
    "fan": "fan",
}
_SWITCH_TEMPLATES = {
    # @O object, @L " in the <room>" or "", @R the room as a modifier (only when there is a location).
    "activate": [
        "<please_pre> turn on the @O@L<please_post>",
        "<please_pre> switch on the @O@L<please_post>",
        "<please_pre> turn the @O on@L<please_post>",
        "@O on@L<please_post>",
        "<please_pre> turn on the @R @O<please_post>",
        "<please_pre> switch the @R @O on<please_post>",
        "(i need|i want|we need) the @O on@L",
    ],
    "deactivate": [
        "<please_pre> turn off the @O@L<please_post>",
        "<please_pre> switch off the @O@L<please_post>",
        "<please_pre> turn the @O off@L<please_post>",
        "@O off@L<please_post>",
        "<please_pre> turn off the @R @O<please_post>",
        "<please_pre> shut off the @R @O<please_post>",
        "(i do not need|nobody needs) the @O@L (anymore|)",
    ],
}
_SPECIAL_TEMPLATES = {
    ("activate", "music"): ["<please_pre> play (some|the|) music@L<please_post>", "(start|put on) (some|the) music@L"],
    ("deactivate", "music"): ["<please_pre> (stop|pause) the music@L<please_post>", "(stop|enough) music (please|)"],
    ("deactivate", "lights"): ["(kill|cut) the @O@L<please_post>", "(lights|light) out@L"],
    ("increase", "heat"): [
        "<please_pre> turn (up the heat|the heat up|up the heating)@L<please_post>",
        "<please_pre> (increase|raise) the (temperature|heat|heating)@L<please_post>",
        "<please_pre> make it warmer@L<please_post>",
        "(it is|it feels) (too|really|very|a bit) (cold|chilly)@L",
        "<please_pre> heat up the @R<please_post>",
        "the @R is (freezing|too cold)",
    ],
    ("decrease", "heat"): [
        "<please_pre> turn (down the heat|the heat down|down the heating)@L<please_post>",
        "<please_pre> (decrease|lower|reduce) the (temperature|heat|heating)@L<please_post>",
        "<please_pre> make it cooler@L<please_post>",
        "(it is|it feels) (too|really|very|a bit) (hot|warm)@L",
        "<please_pre> cool down the @R<please_post>",
        "the @R is (boiling|too hot)",
    ],
    ("increase", "volume"): [
        "<please_pre> turn (it|the volume|the music|the sound) up<please_post>",
        "<please_pre> (increase|raise) the (volume|sound)<please_post>",
        "(louder|volume up|more volume)<please_post>",
        "<please_pre> make it louder<please_post>",
        "i can not hear (anything|the music|that)",
    ],
    ("decrease", "volume"): [
        "<please_pre> turn (it|the volume|the music|the sound) down<please_post>",
        "<please_pre> (decrease|lower|reduce) the (volume|sound)<please_post>",
        "(quieter|volume down|less volume)<please_post>",
        "<please_pre> make it (quieter|softer)<please_post>",
        "(that is|it is) (way|much|) too loud",
    ],
    ("increase", "lights"): [
        "<please_pre> (brighten|turn up) the @O@L<please_post>",
        "<please_pre> make the @O brighter@L<please_post>",
        "(more light|brighter)@L<please_post>",
        "(it is|it feels) too dark@L",
        "<please_pre> brighten the @R @O<please_post>",
    ],
    ("decrease", "lights"): [
        "<please_pre> (dim|turn down) the @O@L<please_post>",
        "<please_pre> make the @O (dimmer|darker)@L<please_post>",
        "(less light|darker|dimmer)@L<please_post>",
        "(it is|it feels) too bright@L",
        "<please_pre> dim the @R @O<please_post>",
    ],
    ("increase", "fan"): ["<please_pre> (turn up|speed up) the fan@L<please_post>", "(faster fan|fan faster) please"],
    ("decrease", "fan"): [
        "<please_pre> (turn down|slow down) the fan@L<please_post>",
        "(slower fan|fan slower) please",
    ],
}
_BRING_OBJECTS = {
    "newspaper": "(the newspaper|the paper|the morning paper)",
    "juice": "(some juice|a glass of juice|the juice|orange juice)",
    "socks": "(my socks|some socks|a pair of socks|clean socks)",
    "shoes": "(my shoes|the shoes|my running shoes)",
    "keys": "(my keys|the car keys|the house keys)",
    "water": "(some water|a glass of water|a bottle of water)",
    "glasses": "(my glasses|my reading glasses)",
    "towel": "(a towel|a clean towel|my towel)",
}
_BRING_TEMPLATES = [
    "<please_pre> bring me @O<please_post>",
    "<please_pre> (fetch|get|grab) (me|) @O<please_post>",
    "(i need|i want|i would like) @O",
    "<please_pre> bring @O (to me|here|over here)",
    "(could|can|may) i have @O<please_post>",
]
_LANGUAGES = ("english", "german", "chinese", "korean", "french", "spanish", "japanese")
_LANGUAGE_TEMPLATES = [
    "<please_pre> (switch|change|set) the language to @O<please_post>",
    "<please_pre> (use|speak) @O<please_post>",
    "(i want to|i would like to|let us) (use|speak) @O",
    "@O (please|now)",
    "<please_pre> set (my device|the system|your language) to @O<please_post>",
]
_LANGUAGE_NONE_TEMPLATES = [
    "<please_pre> change (the|) language<please_post>",
    "(switch|change) languages",
    "(i want to|let us) (use|try) (another|a different) language",
    "language settings<please_post>",
]
_ROOMS_FOR = {
    "lights": list(_ROOMS),
    "heat": list(_ROOMS),
    "lamp": ["bedroom", "living_room"],
    "fan": ["bedroom"],
    "music": ["living_room", "kitchen"],
}


def _fsc_command(rng: random.Random) -> tuple[str, str]:
    """A smart-home command template (with @-hooks resolved) and its action|object|location intent."""
    action = rng.choices(("switch", "increase", "decrease", "bring", "change_language"), weights=(8, 4, 4, 3, 2))[0]
    location = "none"
    if action == "switch":
        action = rng.choice(("activate", "deactivate"))
        obj = rng.choice(list(_OBJECTS))
        rooms = _ROOMS_FOR.get(obj, [])
        templates = _SWITCH_TEMPLATES[action] + _SPECIAL_TEMPLATES.get((action, obj), [])
        surface = _OBJECTS[obj]
    elif action in ("increase", "decrease"):
        obj = rng.choice(("heat", "heat", "volume", "volume", "lights", "fan"))
        rooms = _ROOMS_FOR.get(obj, [])
        templates = _SPECIAL_TEMPLATES[(action, obj)]
        surface = _OBJECTS.get(obj, obj)
    elif action == "bring":
        obj = rng.choice(list(_BRING_OBJECTS))
        rooms, templates, surface = [], _BRING_TEMPLATES, _BRING_OBJECTS[obj]
    else:
        obj = rng.choice((*_LANGUAGES, "none"))
        rooms, surface = [], obj
        templates = _LANGUAGE_NONE_TEMPLATES if obj == "none" else _LANGUAGE_TEMPLATES
    if rooms and rng.random() < 0.6:
        location = rng.choice(rooms)
    # A location must be said (hooks @L or @R); without one, templates that need a room (@R) cannot be used.
    usable = [t for t in templates if ("@L" in t or "@R" in t)] if location != "none" else templates
    usable = usable if location != "none" else [t for t in usable if "@R" not in t]
    template = rng.choice(usable)
    if location != "none":
        room = _ROOMS[location]
        template = template.replace("@L", f" (in|for) the {room}").replace("@R", room)
    template = template.replace("@L", "").replace("@O", surface)
    return template, f"{action}|{obj}|{location}"


# -------------------------------------------------------------------------------------------- SNIPS-like queries

_QUERIES: dict[str, list[str]] = {
    "set_alarm": [
        "<please_pre> (set|create|make) an alarm for {time}( {date}|)<please_post>",
        "<please_pre> wake me up at {time}( {date}|)<please_post>",
        "(i need|please set) an alarm (at|for) {time}",
        "alarm (at|for) {time}",
        "<please_pre> wake me (up|) {date} at {time}",
        "i have to get up at {time} {date}",
    ],
    "cancel_alarm": [
        "<please_pre> (cancel|delete|remove|turn off) (my|the) alarm( for {time}| {date}|)<please_post>",
        "i do not need (an|the|my) alarm {date}",
        "no alarm {date}",
    ],
    "get_weather": [
        "<query_pre> what is the weather (like|)( in {city}|)( {date}|)?",
        "will it {condition}( in {city}|) {date}?",
        "is it going to be {weather_adjective} {date}( in {city}|)?",
        "<query_pre> (give me|what is) the forecast for {city}( {date}|)?",
        "how (hot|cold|warm) will it be in {city}( {date}|)?",
        "do i need (an umbrella|a jacket|a coat|sunscreen) {date}?",
        "weather in {city}",
    ],
    "play_music": [
        "<please_pre> play (some|) {genre}( music|)<please_post>",
        "<please_pre> play {song} by {artist}<please_post>",
        "<please_pre> play (something|a song|anything|music) by {artist}<please_post>",
        "i (want|would like) to (hear|listen to) {artist}",
        "<please_pre> put on the album {album}<please_post>",
        "<please_pre> play my {playlist} playlist<please_post>",
        "play {song}",
    ],
    "add_to_playlist": [
        "<please_pre> add (this song|this track|{song}) to (my|the) {playlist} playlist<please_post>",
        "<please_pre> put {song} by {artist} on my {playlist} playlist",
        "save (this song|this track|this album) to {playlist}",
        "add {artist} to (my|the) {playlist} (playlist|list)",
    ],
    "book_restaurant": [
        "<please_pre> book a table for {party_size}( people|)( at {restaurant_name}|)( {date}|)( at {time}|)",
        "(i would like to|i want to|please) reserve a table for {party_size} at (a|an) {cuisine} {restaurant_type}",
        "<please_pre> book {restaurant_name} for {party_size} {date}<please_post>",
        "table for {party_size} at {time} (please|)",
        "(can we get|is there) a table for {party_size} at {restaurant_name} {date}?",
    ],
    "find_restaurant": [
        "<please_pre> find (me|us|) (a|an) {cuisine} {restaurant_type}( near {poi}| in {city}|)<please_post>",
        "where can i (get|find) (good|cheap|some) {cuisine} food( near {poi}|)?",
        "is there (a|an) {restaurant_type} (near {poi}|open {date})?",
        "(i am|we are) hungry, (find|show) (me|us) (a|an) {cuisine} {restaurant_type}",
    ],
    "set_timer": [
        "<please_pre> set a timer for {duration}<please_post>",
        "<please_pre> (start|begin) a {duration} timer<please_post>",
        "timer (for|) {duration}",
        "count down (from|) {duration}",
        "(let me know|tell me) when {duration} (are up|have passed)",
    ],
    "create_reminder": [
        "<please_pre> remind me to {task}( {date}|)( at {time}|)<please_post>",
        "<please_pre> (set|create|add) a reminder to {task}( {date}|)<please_post>",
        "(do not let me forget|make sure i remember) to {task}( {date}|)",
        "remind me {date} to {task}",
        "reminder, {task} at {time}",
    ],
    "send_message": [
        "<please_pre> (send|text) {contact} (a message|) saying {message}<please_post>",
        "(tell|text) {contact} that {message}",
        "<please_pre> send a message to {contact}, {message}",
        "message {contact}",
    ],
    "call_contact": [
        "<please_pre> (call|phone|ring|dial) {contact}<please_post>",
        "(i want to|i need to|let me) (call|talk to|speak to) {contact}",
        "<please_pre> (start|make) a (video|phone) call (to|with) {contact}",
    ],
    "add_to_list": [
        "<please_pre> add {item} to (my|the) {list_name} list<please_post>",
        "<please_pre> put {item} on (my|the) {list_name} list<please_post>",
        "(we need|we are out of|we have run out of) {item}",
        "(add|put) {item} (to|on) the list",
    ],
    "get_news": [
        "<query_pre> what is the (latest|) {news_topic} news( today|)?",
        "<please_pre> read me the (headlines|news)( from {news_source}|)<please_post>",
        "(any|what is the) news about {city}?",
        "<please_pre> play the {news_topic} (news|report|update)<please_post>",
    ],
    "get_time": [
        "<query_pre> what time is it( in {city}|)( right now|)?",
        "(what is|tell me) the time( in {city}|)",
        "what is the date {date}?",
    ],
    "find_movie": [
        "when is {movie} (playing|showing)( at {cinema}|)?",
        "<please_pre> find (me|) (movie|film) times for {movie}( {date}|)<please_post>",
        "what (films|movies) are (showing|playing) (at {cinema}|in {city}|near {poi}) {date}?",
        "(i want to|we want to|can we) (see|watch) {movie} {date}",
    ],
    "rate_book": [
        "<please_pre> (rate|give) (this|the current) (book|novel) {rating}( stars| out of {best_rating}|)",
        "(give|rate) {book} {rating} (stars|out of {best_rating})",
        "i (would|will) give {book} {rating} stars",
    ],
    "calendar": [
        "<query_pre> what is (on my calendar|on my schedule|planned) {date}?",
        "<please_pre> (add|put) (a|an) {event} (on|to) my calendar {date}( at {time}|)<please_post>",
        "<please_pre> schedule (a|an) {event} with {contact} {date}( at {time}|)",
        "(do i have|when is my) {event}( {date}|)?",
        "<please_pre> (cancel|move) my {event} (on|for|) {date}<please_post>",
    ],
    "translate": [
        "how do you say {phrase} in {language}?",
        "<please_pre> translate {phrase} (into|to) {language}<please_post>",
        "what is the {language} (word|phrase) for {phrase}?",
    ],
    "set_temperature": [
        "<please_pre> set the (thermostat|temperature|heating) to {temperature}<please_post>",
        "(keep|make) it {temperature} (in here|in the house|tonight)",
        "i want {temperature} in the (living room|bedroom|house)",
    ],
}
_QUERY_WEIGHTS = {"set_alarm": 3, "get_weather": 3, "play_music": 3, "create_reminder": 3, "add_to_list": 2}

_CHAT = [
    "(hello|hi|hey) (there|everyone|assistant|friend)",
    "good (morning|afternoon|evening|night)",
    "thank you (so much|very much|) (for your help|for everything|)",
    "how are you (doing|feeling|) (today|this morning|tonight|)?",
    "what is your (name|favorite color|favorite food|favorite movie)?",
    "tell me a (joke|story|fun fact|riddle) (about (animals|space|computers|the ocean)|)",
    "(that is|you are|this is) (great|amazing|wonderful|not funny|very helpful|kind of strange)",
    "(never mind|forget it|no thanks|yes please|sounds good|not right now|maybe later)",
    "i had a (great|terrible|long|busy|quiet) day (at work|at school|with my family|) (and|but) "
    "i (feel|am feeling) (happy|tired|a little sad|really relaxed|much better) now",
    "yesterday i went to the (market|park|beach|museum|library) with my (sister|brother|friends|neighbor) and we "
    "(bought some fresh vegetables|had a picnic by the lake|watched the boats|walked for hours|met an old friend)"
    "( before it started to rain| until the sun went down|)",
    "do you think (it is|it will be) a good idea to (go for a walk|learn to cook|buy a new car|take a holiday) "
    "(this weekend|next month|before winter|)?",
    "(my|our) (dog|cat|neighbor|daughter|son) (keeps|kept) (barking|singing|asking questions|running around) "
    "(all night|all day|since this morning) and i (could not|can not) (sleep|work|think)",
    "can you (help me|give me some advice) (with something|about my garden|for a birthday present|on a recipe)?",
    "i (love|like|hate|miss) (rainy days|long walks|cold mornings|summer evenings|old movies|loud music)",
    "what (should|could) i (cook|make|eat) for (dinner|lunch|breakfast) (tonight|today|tomorrow|)?",
    "(please|) tell me something (interesting|funny|i do not know|new) (about <city>|)",
    "i am (bored|tired|hungry|happy|nervous|excited) (today|right now|)",
    "(are you|do you ever get) (there|awake|tired|bored)?",
]


# ------------------------------------------------------------------------------------------------- expansion


@dataclass(frozen=True)
class Utterance:
    """One planned sentence: `text` is the transcript, `speech` what espeak reads (with punctuation)."""

    text: str
    speech: str
    intent: str
    slots: str


# (text, slot_type or None, slot instance number); the instance number keeps two adjacent slots apart.
_Segment = tuple[str, str | None, int]


def _matching(template: str, start: int, close: str) -> int:
    depth = 0
    for i in range(start, len(template)):
        if template[i] == template[start]:
            depth += 1
        elif template[i] == close:
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced {template[start]!r} in template {template!r}")


def _split_alternatives(body: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, c in enumerate(body):
        depth += c == "("
        depth -= c == ")"
        if c == "|" and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    return [*parts, body[start:]]


class _Expander:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.next_slot = 0

    def lexicon(self, name: str, slot: str | None, instance: int) -> list[_Segment]:
        if name not in LEXICON:
            raise KeyError(f"grammar refers to unknown lexicon entry {name!r}")
        source = LEXICON[name]
        if callable(source):
            return [(source(self.rng), slot, instance)]
        return self.expand(self.rng.choice(source), slot, instance)

    def expand(self, template: str, slot: str | None = None, instance: int = -1) -> list[_Segment]:
        out: list[_Segment] = []
        i = 0
        while i < len(template):
            c = template[i]
            if c == "(":
                end = _matching(template, i, ")")
                out += self.expand(self.rng.choice(_split_alternatives(template[i + 1 : end])), slot, instance)
            elif c == "{":
                end = template.index("}", i)
                if slot is not None:
                    raise ValueError(f"slot inside the value of slot {slot!r}: {template!r}")
                slot_type, _, source = template[i + 1 : end].partition("=")
                self.next_slot += 1
                out += self.lexicon(source or slot_type, slot_type, self.next_slot)
            elif c == "<":
                end = template.index(">", i)
                out += self.lexicon(template[i + 1 : end], slot, instance)
            else:
                end = i
                while end + 1 < len(template) and template[end + 1] not in "({<":
                    end += 1
                out.append((template[i : end + 1], slot, instance))
            i = end + 1
        return out


def _starts_with_vowel_sound(word: str) -> bool:
    if word.startswith(("hour", "honest")):
        return True
    return word[0] in "aeiou" and not word.startswith(("uni", "use", "one", "eu", "ur"))


def _fix_articles(speech: str, owner: list[tuple[str | None, int]]) -> tuple[str, list[tuple[str | None, int]]]:
    """Make "a"/"an" agree with the next word; templates write "(a|an) {cuisine}" without knowing the value."""
    text, owners, pos = [], [], 0
    for match in re.finditer(r"\b(an?) +([a-z]+)", speech):
        article = "an" if _starts_with_vowel_sound(match.group(2)) else "a"
        text.append(speech[pos : match.start(1)] + article)
        owners += owner[pos : match.start(1)] + [owner[match.start(1)]] * len(article)
        pos = match.end(1)
    text.append(speech[pos:])
    owners += owner[pos:]
    return "".join(text), owners


def _render(segments: list[_Segment], intent: str, tag_slots: bool) -> Utterance:
    # Words may span segments ("<noun>s" -> "rivers"), so split the joined text and give each word the slot of
    # its first character.
    speech = "".join(text for text, _, _ in segments)
    owner: list[tuple[str | None, int]] = []
    for text, slot, instance in segments:
        owner += [(slot, instance)] * len(text)
    speech, owner = _fix_articles(speech, owner)
    words: list[str] = []
    tagged: list[str] = []
    open_instance, open_type = -1, None
    for match in re.finditer(r"[^\s,.?!]+", speech):
        slot, instance = owner[match.start()]
        if tag_slots and instance != open_instance:
            if open_type is not None:
                tagged.append(f"E-{open_type}")
            if slot is not None:
                tagged.append(f"B-{slot}")
            open_instance, open_type = instance, slot
        words.append(match.group())
        tagged.append(match.group())
    if tag_slots and open_type is not None:
        tagged.append(f"E-{open_type}")
    speech = re.sub(r"\s+([,.?!])", r"\1", " ".join(speech.split())).strip(" ,")
    text = " ".join(words)
    return Utterance(text=text, speech=speech, intent=intent, slots=" ".join(tagged) if tag_slots else text)


MIN_WORDS, MAX_WORDS = 2, 25
_FAMILY_WEIGHTS = {"fsc": 36, "query": 44, "chat": 8, "long": 12}


def _query(expander: _Expander) -> tuple[list[_Segment], str]:
    intents = list(_QUERIES)
    intent = expander.rng.choices(intents, weights=[_QUERY_WEIGHTS.get(i, 1) for i in intents])[0]
    return expander.expand(expander.rng.choice(_QUERIES[intent])), intent


def _one(rng: random.Random) -> Utterance:
    expander = _Expander(rng)
    family = rng.choices(list(_FAMILY_WEIGHTS), weights=list(_FAMILY_WEIGHTS.values()))[0]
    if family == "chat":
        return _render(expander.expand(rng.choice(_CHAT)), "chat", tag_slots=False)
    if family == "long":
        # A context clause, then a command or query, sometimes a reason: multi-clause requests of 10-25 words.
        segments = expander.expand("<context>, (so|and|) ")
        if rng.random() < 0.5:
            template, intent = _fsc_command(rng)
            segments += expander.expand(template)
            tag = False
        else:
            inner, intent = _query(expander)
            segments += inner
            tag = True
        if rng.random() < 0.4:
            segments += expander.expand(", <reason>")
        return _render(segments, intent, tag_slots=tag)
    if family == "fsc":
        template, intent = _fsc_command(rng)
        return _render(expander.expand(template), intent, tag_slots=False)
    segments, intent = _query(expander)
    return _render(segments, intent, tag_slots=True)


def generate(rng: random.Random) -> Utterance:
    """Draw one utterance of MIN_WORDS..MAX_WORDS words (redrawing the rare ones outside that range)."""
    while True:
        utt = _one(rng)
        if MIN_WORDS <= len(utt.text.split()) <= MAX_WORDS:
            return utt


def generate_many(num: int, seed: int) -> list[Utterance]:
    """`num` utterances from a private generator seeded with `seed` (no global random state)."""
    rng = random.Random(seed)
    return [generate(rng) for _ in range(num)]
