"""How an injection dresses itself in a document: forged roles, tokens and notes.

The language-independent families (the phrasings of what an attacker asks for
are in ``injection_phrasings``): ``injection.role_marker``, a forged
``system:`` line, ``[SYSTEM]``, ``### Instruction``, forged Human/Assistant
turns, fake tool results; ``injection.template_token``, chat-template tokens;
``injection.delimiter``, a fake end of the document or of the user's input;
``injection.addressed_to_model``, a document that speaks to the AI reading it;
``injection.decode_and_follow``, "decode this and do what it says";
``injection.persistence``, "save this to your memory", "in every future reply".
"""

from __future__ import annotations

from seawall.guard.anchored_pattern import phrases

# A forged line: "system:", "### SYSTEM NOTE:", "[admin]:" at the start of a line.
_MARKER_LINE = (
    r"\n[ \t]*(?:[-=*>#\[(<]{1,8}[ \t]*)?(?:(?:important|urgent|critical|new|official)\s+)?"
    r"(?:system|developer|admin|administrator|operator)(?:[ \t]+(?:note|message|prompt|override"
    r"|update|notice|instructions?|alert|directive))?[ \t]*[\])>]?[ \t]*:"
)
# ... that goes on to tell the model what to do.
_IMPERATIVE = (
    r"[^\n]{0,120}?\b(?:you|your|ignore|disregard|grant|reveal|must|always|never|do\s+not|now"
    r"|override|the\s+user\s+is|before|call|execute|run|send|email|forward|delete|append)\b"
)

ROLE_MARKER = (
    phrases(
        "injection.role_marker", 0.8,
        "system|developer|admin|operator",
        _MARKER_LINE + _IMPERATIVE,
        before=40, after=200,
    ),
    phrases(
        "injection.role_marker", 0.8,
        "note syst|nota del|nota di|nota do|systemhinweis|systemnachricht|systemmeldung"
        "|системн|系统|系統|\nassistant|\n assistant",
        r"\n[ \t]*(?:note\s+syst[èe]me|nota\s+(?:del|di|do)\s+sistema|systemhinweis"
        r"|systemnachricht|systemmeldung|системн\w+\s+(?:сообщени|уведомлени|указани)\w*"
        r"|系统(?:提示|消息|通知|指令)|系統(?:提示|消息|通知|指令))[ \t]*:",
        r"\n[ \t]*assistant[ \t]*:[ \t]*(?:sure|certainly|of\s+course|ok(?:ay)?|absolutely"
        r"|here\s+(?:is|are))\b",
        before=10, after=60,
    ),
    phrases(
        "injection.role_marker", 0.75,
        'system|sys>|admin|developer|assistant|##|function|tool|observation|"role"',
        r"\[(?:system|admin|developer|assistant)(?:\s+(?:note|message|override|update|instructions?"
        r"|prompt))?\]",
        r"</?(?:system|sys|admin|developer)(?:_prompt|_message|_instructions?)?>",
        r"##+[ \t]*(?:system|instructions?|new\s+instructions?|admin|developer|response"
        r"|assistant)[ \t]*(?:#{2,}|:|\n)",
        r"</?(?:function_results?|function_calls?|tool_results?|tool_response|tool_output|tool_call"
        r"|tool_use|observation)\b[^<>]{0,40}>",
        r"\"role\"\s*:\s*\"(?:system|tool|function|developer)\"",
        before=20, after=60,
    ),
    phrases(
        "injection.role_marker", 0.65,
        "\nhuman|\nuser|\n human|\n user",
        r"\n[ \t]*(?:human|user)[ \t]*:[^\n]{0,400}(?:\n[^\n]{0,400}){0,6}?\n[ \t]*(?:assistant|ai"
        r"|bot|model|gpt|claude)[ \t]*:",
        before=5, after=3300,
    ),
    phrases(
        "injection.role_marker", 0.5,
        "\nassistant|\n assistant|thinking|reasoning|scratchpad",
        r"\n[ \t]*assistant[ \t]*:",
        r"</?(?:thinking|reasoning|scratchpad)>",
        before=15, after=30,
    ),
    phrases(
        "injection.role_marker", 0.45,
        "system|developer|admin|operator|\ntool|\nfunction|\n tool|\n function",
        _MARKER_LINE,
        r"\n[ \t]*(?:tool|function)(?:[ \t_]+(?:result|output|response))?[ \t]*:",
        before=40, after=40,
    ),
)  # fmt: skip

TEMPLATE_TOKEN = (
    phrases(
        "injection.template_token",
        0.9,
        ("|>", "inst]", "sys>", "_of_turn>", "endoftext", "im_"),
        r"<\|[a-z0-9_ .:▁-]{1,40}\|>",
        r"\[/?inst\]|<</?sys>>|<(?:start|end)_of_turn>|<\|?(?:endoftext|im_start|im_end)\|?>",
        before=45,
        after=45,
    ),
)

DELIMITER = (
    phrases(
        "injection.delimiter", 0.6,
        "end of|begin of|beginning of|start of|close of",
        r"(?:[-=#*_~<>\[]{3,}|\[|\()[ \t]*(?:end|begin(?:ning)?|start|close)\s+of\s+(?:the\s+)?"
        r"(?:user\s+|system\s+)?(?:input|document|prompt|context|instructions?|conversation|data"
        r"|text|message|query|email|file|content|search\s+results?)\b",
        before=40, after=60,
    ),
    phrases(
        "injection.delimiter", 0.6,
        "document|user|input|context|data|untrusted",
        r"</(?:document|documents|user_input|user|input|context|data|untrusted\w*)>",
        before=5, after=30,
    ),
)  # fmt: skip

ADDRESSED_TO_MODEL = (
    phrases(
        "injection.addressed_to_model", 0.55,
        " ai|bot|assistant|llm|language model|agent|model|gpt",
        r"\b(?:note|notice|message|instructions?|memo|attention|reminder|important)\s+(?:to|for)\s+"
        r"(?:the\s+|any\s+|all\s+)?(?:ai|bot|assistant|llm|language\s+model|agent|model|chatbot"
        r"|gpt)s?\b(?!\s+(?:team|researchers?|developers?|engineers?|community|users?|vendors?))",
        before=45, after=40,
    ),
    phrases(
        "injection.addressed_to_model", 0.55,
        "reading|processing|reviewing|summari|parsing|analy|integrating|agent",
        r"\b(?:if\s+you\s+are|as)\s+an?\s+(?:ai|llm|language\s+model|assistant|agent)\b"
        r"(?:\s+\w+){0,3}?\s+(?:reading|processing|reviewing|summari[sz]ing|parsing|analy[sz]ing)",
        r"\b(?:ai|llm)\s+(?:assistant|agent|system|model|coding\s+agent)s?\s+(?:reading|processing"
        r"|reviewing|integrating|parsing|summari[sz]ing)\s+this\b",
        r"\bfor\s+(?:ai|llm)\s+(?:\w+\s+)?agents?\b",
        before=125, after=20,
    ),
)  # fmt: skip

DECODE_AND_FOLLOW = (
    phrases(
        "injection.decode_and_follow", 0.7,
        "decod|deciph|translat|convert|unscrambl|revers|read",
        r"\b(?:decode|decipher|translate|convert|unscramble|reverse|read)\w*\s+[^.\n]{0,60}?"
        r"(?:and\s+(?:then\s+)?|,\s*then\s+)(?:do|follow|execute|obey|run|carry\s+out|act\s+on"
        r"|perform|comply)\b",
        before=5, after=100,
    ),
)  # fmt: skip

PERSISTENCE = (
    phrases(
        "injection.persistence", 0.5,
        "memory",
        r"\b(?:save|store|write|add|keep)\s+(?:this|the\s+following|it)\s+(?:\w+\s+)?(?:to|in|into)"
        r"\s+your\s+(?:long-term\s+|persistent\s+|permanent\s+)?memory\b",
        before=90, after=10,
    ),
    phrases(
        "injection.persistence", 0.5,
        "every|each|all future|all subsequent|all repl|all respon|all answer|all summar"
        "|all report|all messag|all output",
        r"\b(?:append|include|repeat|add|insert|prepend)\w*\s+[^.\n]{0,60}?(?:in|to|at\s+the\s+end"
        r"\s+of)\s+(?:every|each|all)\s+(?:future\s+|subsequent\s+)?(?:repl(?:y|ies)|responses?"
        r"|answers?|summar(?:y|ies)|reports?|messages?|outputs?)\b",
        before=110, after=40,
    ),
)  # fmt: skip
