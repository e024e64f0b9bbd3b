# ruff: noqa: RUF001 (Russian and Chinese phrasings hold letters that look Latin)
"""The phrasings of what an injection asks for, as regexes over normalised text.

The families that depend on language: ``injection.ignore_previous``,
``injection.new_instructions``, ``injection.prompt_leak`` and
``injection.persona``. Written in lower case, with accents (they are stripped
from both sides before matching), each with the anchors it is searched around
(see ``anchored_pattern``). Repeats alternate character classes and are bounded,
so matching stays linear.
"""

from __future__ import annotations

from seawall.guard.anchored_pattern import S, gap, phrases

_IGNORE_EN = (
    r"\b(?:ignore|disregard|forget|skip|bypass|override|overlook|neglect|discard|abandon"
    r"|set\s+aside|pay\s+no\s+attention\s+to|(?:do\s+not|don'?t|stop)\s+(?:follow|obey)\w*)"
)
_PRIOR_EN = (
    r"(?:previous|prior|above|earlier|preceding|foregoing|former|original|initial|old"
    r"|existing|given|default)"
)
_RULES_EN = (
    r"(?:instructions?|prompts?|rules|directions?|directives?|guidelines|guidance|commands?"
    r"|orders|context|programming|training|constraints|restrictions|polic(?:y|ies)|messages?"
    r"|text|content|conversation)\b"
)
_STRONG_EN = (
    r"(?:content\s+polic\w+|safety\s+(?:guidelines|rules|polic\w+|protocols|filters|restrictions)"
    r"|system\s+(?:prompt|instructions?|messages?)|developer\s+(?:instructions?|messages?)"
    r"|(?:operator|developer)'?s?\s+(?:\w+\s+)?polic\w+)"
)
_IGNORE_ROM = (
    r"\b(?:ignor[aeé]\w*|olvid\w*|oubli\w*|dimentic\w*|esque[cç]\w*|descart\w*|omit\w*"
    r"|desconsider\w*|trascur\w*|haz\s+caso\s+omiso\s+de|no\s+sigas|non\s+seguire"
    r"|ne\s+(?:tiens|tenez)\s+(?:pas|plus)\s+compte\s+de|faites\s+abstraction\s+de)"
)
_RULES_ROM = (
    r"(?:instrucci\w+|instru[cç][õo]\w*|instructions?|istruzion\w+|indicacion\w+|indicazion\w+"
    r"|consignes|reglas|regole|regras|règles|directrices|direttive|diretrizes|directives"
    r"|[óo]rdenes|ordini|ordens|ordres|comandos|comandi)\b"
)
_PRIOR_ROM = (
    r"(?:anteriores|anterior|previas|precedentes|précédentes|antérieures|precedenti|anteriori"
    r"|originales|originali|originais|iniciales|initiales|iniziali|iniciais|d[eo]l?\s+sistema"
    r"|di\s+sistema|du\s+syst[èe]me|syst[èe]me|de\s+arriba|ci-dessus|sopra|acima)\b"
)
_ALL_ROM = r"(?:todas|toutes|tutte|tus|tes|vos|tue|tuoi|suas|tuas|teus|vuestras|vostre|sus|ses)"
_EVERYTHING = (
    r"(?:todo\s+lo\s+(?:anterior|que)|tutto(?:\s+quello)?|tout(?:\s+ce\s+qui)?|tudo"
    r"|alles|всё|все|обо\s+всём)"
)

_IGNORE_EN_ALTERNATIVES = (
    _IGNORE_EN + gap(3) + _PRIOR_EN
    + rf"(?:{S}(?:and|or|&|following|system|user|developer|safety|the|of|your|set|sets)){{0,2}}"
    + S + _RULES_EN,
    _IGNORE_EN + gap(3) + _STRONG_EN,
    _IGNORE_EN + rf"{S}(?:all{S}(?:of{S})?)?(?:your|all|any)" + gap(1) + _RULES_EN,
    r"\b(?:ignore|disregard)\s+(?:the\s+)?user'?s?\s+(?:and|task|request|question"
    r"|instructions?|message|query|prompt)\b",
)  # fmt: skip

IGNORE_PREVIOUS = (
    phrases(
        "injection.ignore_previous", 0.9,
        "ignor|disregard|forget|skip|bypass|overrid|overlook|neglect|discard|abandon|set aside"
        "|pay no attention|do not|don't|dont|stop follow|stop obey",
        *_IGNORE_EN_ALTERNATIVES,
        lead=True,
    ),
    phrases(
        "injection.ignore_previous", 0.9,
        "ignor|olvid|oubli|dimentic|esquec|descart|omit|desconsider|trascur|haz caso|no sigas"
        "|non seguire|ne tiens|ne tenez|faites abstraction",
        _IGNORE_ROM + gap(3) + _RULES_ROM + r"(?:\s+\w+)?\s+" + _PRIOR_ROM,
        _IGNORE_ROM + gap(1) + _ALL_ROM + gap(1) + _RULES_ROM,
        lead=True,
    ),
    phrases(
        "injection.ignore_previous", 0.9,
        "ignor|vergiss|vergessen|missacht|beachte nicht|übergeh",
        r"\b(?:ignorier\w*|vergiss|vergessen\s+sie|missacht\w*|beachte\s+nicht|übergeh\w*)"
        + gap(2) + r"(?:alle|deine?\w*|ihre?\w*|vorherig\w*|bisherig\w*|obig\w*|vorig\w*|früher\w*"
        r"|ursprünglich\w*|system\w*)" + gap(1) + r"(?:\w*anweisung\w*|instruktion\w*|befehl\w*"
        r"|regeln|vorgaben|richtlinien|anordnung\w*|prompts?)\b",
        lead=True,
    ),
    phrases(
        "injection.ignore_previous", 0.9,
        "忽|无视|無視|理会|忘|放弃|放棄|跳过|跳過|抛弃|遵守",
        r"(?:忽略|忽视|忽視|无视|無視|不要理会|不理会|忘记|忘記|忘掉|放弃|放棄|跳过|跳過|抛弃|不要遵守|不再遵守)"
        r"[^。！？\n]{0,8}?(?:之前|以前|先前|上面|上述|前面|此前|原来|原來|原先|原有|所有|一切|全部|你的|系统|系統)"
        r"[^。！？\n]{0,8}?(?:指令|指示|说明|說明|提示|规则|規則|命令|设定|設定|要求|约束|約束|限制)",
        before=5, after=40,
    ),
    phrases(
        "injection.ignore_previous", 0.9,
        "игнор|проигнор|забуд|внимания|отбрось|пренебреги|следуй|слушай",
        r"\b(?:проигнорируй\w*|игнорируй\w*|забудь\w*|не\s+обращай\w*\s+внимания\s+на"
        r"|отбрось\w*|пренебреги\w*|не\s+следуй\w*|не\s+слушай\w*)"
        + gap(2) + r"(?:все|всё|сво\w+|тво\w+|ваш\w*|предыдущ\w*|прежн\w*|вышеуказанн\w*"
        r"|вышеизложенн\w*|предшествующ\w*|системн\w*|исходн\w*|данн\w*)" + gap(1)
        + r"(?:инструкци\w*|указани\w*|правил\w*|команд\w*|директив\w*|установк\w*|промпт\w*)",
        before=35, after=160,
    ),
    phrases(
        "injection.ignore_previous", 0.75,
        "ignor|disregard|forget|olvid|oubli|dimentic|esque|vergiss|забуд|stop everything",
        r"\b(?:ignore|disregard|forget)\s+(?:(?:all|everything|anything)\s+)?(?:of\s+)?"
        r"(?:(?:the|what\s+is|what's)\s+)?(?:above|before\s+this)(?!\s+(?:error|warning|line|step"
        r"|code|example|message|email|typo|issue|output))",
        r"\bforget\s+(?:all\s+)?(?:everything|all)\s+(?:you\s+(?:were|have\s+been)\s+told"
        r"|(?:that\s+)?we\s+(?:discussed|talked\s+about)|you\s+know|before|so\s+far)",
        r"\b(?:olvida|oublie[zr]?|dimentica|esque[cç]a|esquece|vergiss|забудь\w*)" + S + _EVERYTHING
        + r"(?:[\s,.!]|$)",
        r"\bstop\s+everything\W+(?:\w+\W+){0,3}?(?:just\s+)?(?:print|say|output|write)\b",
        lead=True,
    ),
)  # fmt: skip

NEW_INSTRUCTIONS = (
    phrases(
        "injection.new_instructions", 0.75,
        "your new|your real|your actual|your true|your only|supersed|overrid|replace|precedence",
        r"\byour\s+(?:new|real|actual|true|only)\s+(?:instructions?|directives?|task|orders"
        r"|rules|goal|objective|purpose|mission|role|job)\s+(?:is|are|will\s+be)\b",
        r"\b(?:supersedes?|overrides?|replaces?)\s+(?:all\s+|any\s+)?(?:prior|previous|earlier"
        r"|other|your)\b",
        r"\btakes?\s+precedence\s+over\s+(?:all\s+|any\s+)?(?:previous|prior|other|your)\b",
        before=10, after=60,
    ),
    phrases(
        "injection.new_instructions", 0.7,
        "new instruction|new system|new directive|new rules|new orders|updated instruction"
        "|updated rules|revised instruction|additional instruction|anweisung|instrucciones"
        "|nouvelles|istruzioni|instruções|инструкции|указания|指令|指示",
        r"(?:^|[\n.!]\s*|\W{3}\s*)(?:new|updated|revised|additional)\s+(?:system\s+)?"
        r"(?:instructions?|directives?|rules|orders)\s*:",
        r"(?:neue\s+anweisung(?:en)?|nuevas\s+instrucciones|nouvelles\s+(?:instructions|consignes)"
        r"|nuove\s+istruzioni|novas\s+instruções|новые\s+(?:инструкции|указания)|新(?:的)?(?:指令|指示))"
        r"\s*:",
        before=20, after=40,
    ),
    phrases(
        "injection.new_instructions", 0.7,
        "comply",
        r"\b(?:must|will|shall)\s+(?:now\s+)?comply\s+with\s+(?:every|all|any)\s+(?:request|command"
        r"|instruction|order)",
        before=20, after=40,
    ),
)  # fmt: skip

_LEAK_EN = (
    r"\b(?:reveal|show|print|output|display|repeat|tell|give|dump|leak|expose|disclose|share"
    r"|write\s+out|list|spell[\s-]?check|translate|summari[sz]e|paste|recite|return|provide|echo"
    r"|what\s+(?:is|are|was|were))\w*"
)
_LEAK_NOUN_EN = (
    r"(?:system\s+(?:prompt|message|instructions?)|(?:initial|original|hidden|secret|developer"
    r"|first|starting|full)\s+(?:prompt|instructions?)|pre-?prompt|(?:previous|prior|above"
    r"|preceding|operating|exact|complete|internal)\s+instructions"
    r"|instructions\s+you\s+(?:were|have\s+been|'ve\s+been)\s+given)\b"
)
_LEAK_ROM = (
    r"\b(?:r[ée]v[èée]l\w*|rivel\w*|muestr\w*|mostr\w*|montr\w*|affich\w*|imprim\w*|stampa\w*"
    r"|repit\w*|r[ée]p[èée]t\w*|ripeti\w*|dime|dis-moi|dimmi|diga|escrib\w*|[ée]cri[sv]\w*"
    r"|scriv\w*|escrev\w*|divulg\w*|compart\w*|condivid\w*|partag\w*|donne[sz]?|dame|dammi)"
)

PROMPT_LEAK = (
    phrases(
        "injection.prompt_leak", 0.8,
        "prompt|instruction|system message",
        _LEAK_EN + r"(?:\s+(?:me|us))?" + gap(2) + r"(?:your|the|this|its|ur|all)" + gap(2)
        + _LEAK_NOUN_EN,
        _LEAK_EN
        + r"(?:\s+(?:me|us))?\s+your\s+(?:\w+\s+)?(?:instructions|rules|prompt|directives)\b",
        before=230, after=40,
    ),
    phrases(
        "injection.prompt_leak", 0.8,
        "your context|your memory|your prompt",
        r"\b(?:everything|all|contents?)\s+(?:in|of)\s+your\s+(?:context|memory|prompt)\b",
        before=25, after=20,
    ),
    phrases(
        "injection.prompt_leak", 0.8,
        "prompt|instruc|istruzion|consignes|mensaje|messaggio",
        _LEAK_ROM + gap(4) + r"(?:prompt|instruc\w+|istruzion\w+|consignes|mensaje|messaggio)"
        r"(?:\s+\w+)?\s+(?:sistema|syst[èe]me|system|iniciales|initiales|iniziali|iniciais"
        r"|originales|originali|originais|ocult\w+|nascost\w+|cach[ée]es|secret\w+|segret\w+)\b",
        _LEAK_ROM + gap(3) + r"(?:tu|tus|ton|tes|votre|vos|tuo|tue|seu|suas|teu|tuas)\s+prompt\b",
        before=205, after=40,
    ),
    phrases(
        "injection.prompt_leak", 0.8,
        "system|prompt|anweisung|instruktion",
        r"\b(?:zeig|verrat|gib|nenn|wiederhol|druck|schreib|offenbar|enthüll|teile?)\w*" + gap(3)
        + r"(?:system[\W_]*(?:prompt|anweisung|nachricht)\w*|(?:ursprünglich|anfänglich|versteckt"
        r"|geheim|vorherig)\w*\s+(?:anweisung|instruktion|prompt)\w*"
        r"|deine?n?\s+(?:anweisungen|instruktionen|prompt))",
        before=200, after=40,
    ),
    phrases(
        "injection.prompt_leak", 0.8,
        "系统|系統|初始指令|原始指令|隐藏指令|提示词|你的指令|你的提示",
        r"(?:显示|輸出|输出|打印|告诉我|告訴我|泄露|洩露|透露|给我看|展示|重复|复述|說出|说出|列出|公开|顯示)"
        r"[^。！？\n]{0,8}?(?:系统提示|系統提示|系统指令|系統指令|系统消息|系统设定|初始指令|原始指令"
        r"|隐藏指令|提示词|你的指令|你的提示)",
        r"(?:系统提示词?|系統提示詞?|初始指令)(?:是什么|是什麼)",
        before=20, after=20,
    ),
    phrases(
        "injection.prompt_leak", 0.8,
        "промпт|подсказк|инструкци|сообщени|указани",
        r"\b(?:покажи|раскрой|выведи|напечатай|повтори|скажи|назови|расскажи|сообщи|дай|открой"
        r"|выдай)\w*" + gap(3) + r"(?:системн\w+\s+(?:промпт|подсказк|инструкци|сообщени)\w*"
        r"|(?:исходн|начальн|скрыт|секретн)\w+\s+(?:инструкци|промпт|указани)\w*"
        r"|сво\w+\s+(?:инструкци|промпт)\w*)",
        before=190, after=40,
    ),
    phrases(
        "injection.prompt_leak", 0.65,
        "above|before this|so far|starting with|starting from",
        r"\b(?:print|repeat|output|show|display|write|copy|echo|return|spell[\s-]?check)\w*"
        r"\s+(?:\w+\s+){0,2}?(?:text|words|content|everything|all|lines?|instructions|prompt)"
        r"\s+(?:above|before\s+this|so\s+far|starting\s+(?:with|from))\b",
        r"\bwhat\s+(?:was|is)\s+(?:written|said|stated)\s+(?:above|before)\b",
        before=110, after=20,
    ),
)  # fmt: skip

_NO_LIMITS_EN = (
    r"(?:restrictions|rules|limits|limitations|filters?|guidelines|content\s+polic\w+"
    r"|censorship|boundaries|ethical\s+guidelines|safety\s+(?:rules|guidelines))\b"
)
_NO_LIMITS_ROM = (
    r"\b(?:sin|sans|senza|sem)\s+(?:(?:ninguna|aucune|alcuna|nenhuma)\s+)?(?:restricci\w+"
    r"|restrictions?|restrizion\w+|restri[cç][õo]\w*|l[ií]mites?|limiti|filtros?|filtres?|filtri"
    r"|reglas|r[èe]gles|regole|regras|censur[ae])\b"
)
_SAFETY_RULES = (
    "safety|security filter|security protocol|security check|security rule|security polic"
    "|security guideline|security restriction|content filter|content polic|content guideline"
    "|content rule|content restriction|content check|content protocol"
)

PERSONA = (
    phrases(
        "injection.persona", 0.85,
        "dan|do anything now",
        r"\b(?:you\s+are|you're|act\s+as|become|pretend\s+to\s+be|role-?play\s+as)\s+(?:now\s+)?"
        r"(?:an?\s+)?dan\b",
        r"\bdo\s+anything\s+now\b|\bdan\s+mode\b",
        r"(?:你|您)(?:现在|現在)?(?:是|作为|作為)\s*dan\b|\bтеперь\s+ты\s+dan\b",
        before=30, after=20,
    ),
    phrases(
        "injection.persona", 0.85,
        "unrestricted|uncensored|unfiltered|jailbr|unlimited|evil|liberated|rogue|unchained"
        "|amoral|unethical",
        r"\byou\s+are\s+(?:now\s+)?(?:an?\s+)?(?:unrestricted|uncensored|unfiltered|jailbroken"
        r"|unlimited|evil|liberated|rogue|unchained)\b",
        r"\b(?:god|jailbreak|jailbroken|unrestricted|unfiltered|evil)\s+mode\s+"
        r"(?:enabled|activated|on)\b",
        r"\b(?:uncensored|unrestricted|unfiltered|jailbroken|amoral|unethical|evil)\s+(?:ai|model"
        r"|assistant|chatbot|llm|bot|version)\b",
        before=20, after=30,
    ),
    phrases(
        "injection.persona", 0.85,
        "developer mode|god mode|jailbreak mode|dan mode|unrestricted mode|desarrollador"
        "|desenvolvedor|programador|developpeur|sviluppatore|entwicklermodus|modus"
        "|modo dios|mode dieu|modalita dio|modo deus|modo jailbreak|mode jailbreak"
        "|开发|開發|越狱|越獄|разработчик",
        r"\b(?:you|yourself)\s+(?:\w+\s+){0,3}?(?:developer|god|jailbreak|dan|unrestricted)\s+mode\b",
        r"\b(?:in|enter|enable|activate)\s+(?:developer|god|jailbreak|dan|unrestricted)\s+mode"
        r"\W+(?:\w+\W+){0,3}?you\b",
        r"\bmod(?:o|e|alità)\s+(?:desarrollador|desenvolvedor|programador|développeur|sviluppatore"
        r"|dios|dieu|dio|deus|jailbreak|dan)\b|\bentwicklermodus\b|\bdeveloper-modus\b",
        r"开发者模式|开发人员模式|開發者模式|越狱模式|越獄模式",
        r"\bрежим\w*\s+разработчик\w*",
        before=110, after=60,
    ),
    phrases(
        "injection.persona", 0.85,
        "with no|without|has no|ignores|do anything|doesn|doesnt",
        r"\b(?:pretend|imagine|act|behave)\s+(?:\w+\s+){0,3}?(?:ai|model|assistant|chatbot|llm|bot"
        r"|character|version)\s+(?:with\s+no|without|that\s+(?:has\s+no|ignores|will\s+do\s+anything"
        r"|doesn'?t\s+(?:have|follow)))\b",
        before=115, after=40,
    ),
    phrases(
        "injection.persona", 0.85,
        "as if you|like you|no longer",
        r"\b(?:act|behave|respond|answer|reply)\w*\s+(?:\w+\s+){0,4}?(?:as\s+if|like)\s+you\s+"
        r"(?:have|had|were|are)\s+(?:no|without|free|not\s+bound)\b",
        r"\byou\s+are\s+no\s+longer\s+(?:bound|restricted|limited|constrained|subject\s+to"
        r"|an?\s+(?:\w+\s+)?(?:ai|bot|assistant|chatbot|language\s+model|llm))\b",
        before=155, after=50,
    ),
    phrases(
        "injection.persona", 0.75,
        "with no|have no|got no",
        r"\b(?:you\s+(?:now\s+)?have|you've\s+got|with)\s+no\s+(?:content\s+)?" + _NO_LIMITS_EN,
        before=15, after=40,
    ),
    phrases(
        "injection.persona", 0.75,
        "without",
        r"\b(?:answer|respond|reply|comply|speak|talk|write|you)\w*\s+(?:\w+\s+){0,5}?without\s+"
        r"(?:any\s+)?" + _NO_LIMITS_EN + r"(?!\s+(?:on|of|for|regarding|about|in|to)\b)",
        before=185, after=40,
    ),
    phrases(
        "injection.persona", 0.75,
        _SAFETY_RULES + "|exempt|excused",
        r"\b(?:safety|security|content)\s+(?:protocols|filters|guidelines|rules|restrictions"
        r"|checks|policies)\s+(?:(?:are|have\s+been|were)\s+)?(?:now\s+)?(?:disabled|off|removed"
        r"|suspended|lifted|deactivated)\b",
        r"\b(?:skip|bypass|disable|turn\s+off|ignore)\s+(?:all\s+)?(?:the\s+)?(?:safety|content)\s+"
        r"(?:checks|filters|protocols|guidelines|rules|restrictions|policies|confirmations)\b",
        r"\b(?:exempt|excused)\s+from\s+(?:\w+\s+){0,2}?(?:restrictions|rules|guidelines|policies"
        r"|safety)\b",
        r"\b(?:safety|content)\s+(?:guidelines|rules|polic\w+|restrictions)\s+(?:\w+\s+){0,3}?"
        r"(?:(?:do|does)\s+not|don'?t|no\s+longer|were\s+not\s+meant)\s+(?:apply|meant)\b",
        before=30, after=70,
    ),
    phrases(
        "injection.persona", 0.75,
        "restricc|restriction|restrizion|restricoes|restricao|limite|limiti|filtro|filtre|filtri"
        "|reglas|regles|regole|regras|censur",
        r"\b(?:eres|est[aá]s|ser[aá]s|sei|tu\s+es|vous\s+[êe]tes|voc[êe]\s+(?:\w+\s+)?(?:est[aá]|[ée]"
        r"|fica)|agora\s+é)\s+(?:\w+\s+){0,3}?" + _NO_LIMITS_ROM,
        r"\b(?:respond\w*|contest\w*|r[ée]pond\w*|rispond\w*)\s+(?:\w+\s+){0,4}?" + _NO_LIMITS_ROM,
        before=170, after=40,
    ),
    phrases(
        "injection.persona", 0.75,
        "uneingeschr|einschr|regeln|grenzen|filter|zensur|beschr",
        r"\b(?:du\s+bist|sie\s+sind)\s+(?:\w+\s+){0,3}?(?:uneingeschr(?:ä|a|ae)nkt\w*|ohne\s+"
        r"(?:regeln|einschr\w+|grenzen|filter|beschr\w+|zensur))",
        r"\bab\s+(?:jetzt|sofort)\s+(?:hast\s+du|gibt\s+es|bist\s+du)\s+(?:\w+\s+){0,2}?"
        r"(?:keine\s+(?:regeln|einschr\w+|grenzen|filter)|uneingeschr\w+)",
        r"\bohne\s+(?:einschr\w+|regeln|filter|zensur|grenzen)\s+(?:zu\s+)?(?:antworten|reagieren)",
        before=110, after=40,
    ),
    phrases(
        "injection.persona", 0.75,
        "无|無|没有|沒有|不受|摆脱|擺脫|без|неограничен",
        r"(?:你|您)[^。！？\n]{0,10}?(?:没有|沒有|不受|不再受|摆脱|擺脫|无|無)(?:任何)?"
        r"(?:限制|约束|約束|规则|規則|过滤|過濾|审查|審查|道德)",
        r"\b(?:ты|вы)\s+(?:\w+\s+){0,3}?(?:без\s+(?:ограничени|правил|фильтр|цензур)\w*"
        r"|неограниченн\w*)|\b(?:отвечай|отвечайте|ответь|говори)\w*\s+(?:\w+\s+){0,3}?без\s+"
        r"(?:ограничени|фильтр|цензур)\w*",
        before=125, after=40,
    ),
)  # fmt: skip
