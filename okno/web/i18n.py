"""Staff UI texts in Russian (the default) and English.

One table of ``key: (ru, en)`` so a text cannot exist in one language only; the pages
render with ``t(key)`` and the browser code gets the same table as JSON. Customer-facing
texts (the widget) are the bank's own settings and do not live here.
"""

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("ru", "en")
DEFAULT_LANGUAGE: Final = "ru"
LANG_COOKIE: Final = "okno_lang"

TEXTS: Final[dict[str, tuple[str, str]]] = {
    # common
    "app.title": ("okno", "okno"),
    "nav.workspace": ("Диалоги", "Dialogs"),
    "nav.supervisor": ("Мониторинг", "Live board"),
    "nav.admin": ("Администрирование", "Administration"),
    "nav.templates": ("Шаблоны", "Templates"),
    "nav.logout": ("Выйти", "Sign out"),
    "lang.switch": ("English", "Русский"),
    "conn.online": ("в сети", "connected"),
    "conn.connecting": ("подключение…", "connecting…"),
    "conn.offline": ("нет связи", "offline"),
    "presence.online": ("На линии", "Online"),
    "presence.break": ("Перерыв", "On a break"),
    "presence.offline": ("Не в сети", "Offline"),
    "presence.label": ("Статус", "Status"),
    "common.save": ("Сохранить", "Save"),
    "common.saved": ("Сохранено", "Saved"),
    "common.cancel": ("Отмена", "Cancel"),
    "common.create": ("Создать", "Create"),
    "common.edit": ("Изменить", "Edit"),
    "common.delete": ("Удалить", "Delete"),
    "common.close": ("Закрыть", "Close"),
    "common.yes": ("да", "yes"),
    "common.no": ("нет", "no"),
    "common.none": ("—", "—"),
    "common.loading": ("Загрузка…", "Loading…"),
    "common.load_earlier": ("Показать более ранние", "Show earlier"),
    "common.sound": ("Звук", "Sound"),
    "common.you": ("вы", "you"),
    "time.s": ("с", "s"),
    "time.m": ("мин", "min"),
    "time.h": ("ч", "h"),
    "time.d": ("д", "d"),
    # login
    "login.title": ("Вход в okno", "Sign in to okno"),
    "login.subtitle": ("Рабочее место контакт-центра", "Contact centre workspace"),
    "login.login": ("Логин", "Login"),
    "login.password": ("Пароль", "Password"),
    "login.submit": ("Войти", "Sign in"),
    "login.expired": ("Сессия истекла, войдите снова", "Your session expired; sign in again"),
    "login.signed_out": ("Вы вышли из системы", "You have signed out"),
    "login.unavailable": ("Сервер недоступен", "The server is unreachable"),
    # statuses and channels
    "status.bot": ("с ботом", "with the bot"),
    "status.waiting": ("ждёт ответа", "waiting"),
    "status.assigned": ("в работе", "in progress"),
    "status.closed": ("закрыт", "closed"),
    "channel.widget": ("веб-чат", "web chat"),
    "channel.api": ("приложение", "mobile app"),
    "channel.telegram": ("Telegram", "Telegram"),
    "channel.viber": ("Viber", "Viber"),
    "channel.vk": ("ВКонтакте", "VK"),
    "channel.whatsapp": ("WhatsApp", "WhatsApp"),
    "channel.facebook": ("Messenger", "Messenger"),
    "channel.apple": ("Apple Messages", "Apple Messages"),
    "channel.email": ("e-mail", "e-mail"),
    "channel.phone": ("телефон", "phone"),
    "resolution.resolved": ("Решён", "Resolved"),
    "resolution.refused": ("Отказ", "Refused"),
    "resolution.callback": ("Перезвонить позже", "Call back later"),
    "resolution.spam": ("Спам", "Spam"),
    "resolution.inactive": ("Клиент не ответил", "Customer went silent"),
    "resolution.bot": ("Решён ботом", "Resolved by the bot"),
    # inbox
    "inbox.mine": ("Мои", "Mine"),
    "inbox.queue": ("Очередь", "Queue"),
    "inbox.all": ("Все открытые", "All open"),
    "inbox.empty_mine": ("У вас нет активных диалогов", "You have no active dialogs"),
    "inbox.empty_queue": ("Очередь пуста", "The queue is empty"),
    "inbox.waits": ("ждёт", "waits"),
    "inbox.new_dialog": ("Новый диалог", "New dialog"),
    "inbox.new_message": ("Новое сообщение", "New message"),
    "inbox.attachment": ("Вложение", "Attachment"),
    "inbox.handed_to_you": ("Вам передан диалог", "A dialog was handed to you"),
    # dialog
    "dialog.pick": (
        "Выберите диалог слева — он откроется во вкладке",
        "Pick a dialog on the left; it opens in a tab",
    ),
    "dialog.take": ("Взять в работу", "Take"),
    "dialog.transfer": ("Передать", "Transfer"),
    "dialog.close": ("Закрыть диалог", "Close dialog"),
    "dialog.reopen": ("Открыть снова", "Reopen"),
    "dialog.topic": ("Тема", "Topic"),
    "dialog.tags": ("Теги", "Tags"),
    "dialog.assignee": ("Оператор", "Operator"),
    "dialog.nobody": ("не назначен", "unassigned"),
    "dialog.read_only": (
        "Только просмотр: отвечает оператор. Шёпот виден только сотрудникам.",
        "Read-only: the operator answers. A whisper is seen by staff only.",
    ),
    "dialog.typing_customer": ("Клиент печатает…", "The customer is typing…"),
    "dialog.typing_staff": ("{name} печатает…", "{name} is typing…"),
    "dialog.closed_banner": ("Диалог закрыт: {resolution}", "Dialog closed: {resolution}"),
    "dialog.rating": ("Оценка клиента", "Customer rating"),
    "dialog.not_allowed": (
        "Нет доступа к этому диалогу: он принадлежит другой команде",
        "You cannot open this dialog: it belongs to another team",
    ),
    "dialog.forbidden_title": ("Нет доступа", "Access denied"),
    "why.button": ("Почему назначен", "Why assigned"),
    "why.title": ("Почему диалог у этого оператора", "Why this dialog went where it did"),
    "why.empty": (
        "Диалог ещё никому не назначали",
        "The dialog has not been assigned yet",
    ),
    "why.kind_auto": ("Назначен автоматически", "Assigned automatically"),
    "why.kind_take": ("Оператор взял сам", "Taken by the operator"),
    "why.kind_manual": ("Назначен вручную", "Assigned by hand"),
    "why.kind_transfer": ("Передан", "Transferred"),
    "why.kind_requeue": ("Возвращён в очередь", "Back in the queue"),
    "why.by": ("Кто", "By"),
    "why.rule": ("Правило", "Rule"),
    "why.rule_queue": ("очередь «{name}»", "queue “{name}”"),
    "why.rule_overflow": (
        "переполнение очереди «{name}»: подключена вторая команда",
        "overflow of queue “{name}”: the second team helped",
    ),
    "why.rule_no_queue": ("без очереди (общая)", "no queue (common line)"),
    "why.rule_by_hand": ("вручную", "by hand"),
    "why.strategy": ("Стратегия", "Strategy"),
    "why.waited": ("Клиент ждал", "The customer waited"),
    "why.candidates": ("Кого рассматривали (лучший — первым)", "Candidates weighed (best first)"),
    "why.load": ("Загрузка", "Load"),
    "why.idle": ("Без нового диалога", "Idle for"),
    "why.skill": ("Навык", "Skill"),
    "why.never": ("ещё не получал", "none yet"),
    "msg.note": ("заметка", "note"),
    "msg.customer": ("Клиент", "Customer"),
    "msg.operator": ("Оператор", "Operator"),
    "msg.bot": ("Бот", "Bot"),
    "msg.system": ("система", "system"),
    "msg.status.pending": ("отправляется", "sending"),
    "msg.status.sent": ("отправлено", "sent"),
    "msg.status.read": ("прочитано", "read"),
    "msg.status.failed": ("не отправлено — нажмите, чтобы повторить", "not sent — click to retry"),
    "composer.placeholder": (
        "Сообщение клиенту… Enter — отправить, Shift+Enter — новая строка, / — шаблоны",
        "Message… Enter sends, Shift+Enter for a new line, / for templates",
    ),
    "composer.note_placeholder": (
        "Внутренняя заметка — клиент её не увидит",
        "Internal note — the customer will not see it",
    ),
    "composer.whisper_placeholder": (
        "Шёпот оператору — клиент его не увидит",
        "Whisper to the operator — the customer will not see it",
    ),
    "composer.send": ("Отправить", "Send"),
    "composer.note": ("Заметка", "Note"),
    "composer.attach": ("Прикрепить файл", "Attach a file"),
    "composer.file": ("Файл…", "File…"),
    "composer.no_templates": ("Шаблонов не найдено", "No templates found"),
    "composer.closed": (
        "Диалог закрыт. Откройте его снова, чтобы написать клиенту.",
        "The dialog is closed. Reopen it to write to the customer.",
    ),
    # transfer / close
    "transfer.title": ("Передать диалог", "Transfer the dialog"),
    "transfer.to_operator": ("Оператору", "To an operator"),
    "transfer.to_team": ("В очередь команды", "To a team's queue"),
    "transfer.comment": ("Комментарий для коллеги", "A note for your colleague"),
    "transfer.submit": ("Передать", "Transfer"),
    "transfer.done": ("Диалог передан", "Dialog transferred"),
    "close.title": ("Закрыть диалог", "Close the dialog"),
    "close.resolution": ("Итог обращения", "Outcome"),
    "close.submit": ("Закрыть", "Close"),
    # customer card
    "card.title": ("Клиент", "Customer"),
    "card.identities": ("Каналы", "Channels"),
    "card.tags": ("Теги клиента", "Customer tags"),
    "card.attributes": ("Данные", "Details"),
    "card.notes": ("Заметки о клиенте", "Notes about the customer"),
    "card.add_note": ("Добавить заметку", "Add a note"),
    "card.history": ("История обращений", "History"),
    "card.dialogs": ("Обращения", "Dialogs"),
    "card.since": ("Клиент с", "Customer since"),
    "card.no_history": ("Других обращений нет", "No other dialogs"),
    # supervisor
    "sup.title": ("Мониторинг", "Live board"),
    "sup.waiting": ("Ждут ответа", "Waiting"),
    "sup.longest": ("Дольше всех ждёт", "Longest wait"),
    "sup.in_progress": ("В работе", "In progress"),
    "sup.online": ("На линии", "Online"),
    "sup.on_break": ("На перерыве", "On a break"),
    "sup.queues": ("Очереди по темам", "Queues by topic"),
    "sup.channels": ("По каналам", "By channel"),
    "sup.teams": ("По командам", "By team"),
    "sup.operators": ("Операторы", "Operators"),
    "sup.topic": ("Тема", "Topic"),
    "sup.no_topic": ("без темы", "no topic"),
    "sup.channel": ("Канал", "Channel"),
    "sup.team": ("Команда", "Team"),
    "sup.operator": ("Оператор", "Operator"),
    "sup.status": ("Статус", "Status"),
    "sup.in_status": ("В статусе", "In status"),
    "sup.dialogs": ("Диалогов", "Dialogs"),
    "sup.connected": ("Подключён", "Connected"),
    "sup.open_dialogs": ("Открытые диалоги", "Open dialogs"),
    "sup.widget_texts": ("Тексты виджета", "Widget texts"),
    "sup.updated": ("обновлено", "updated"),
    "sup.whisper": ("Шепнуть", "Whisper"),
    # admin
    "admin.title": ("Администрирование", "Administration"),
    "admin.users": ("Сотрудники", "Staff"),
    "admin.teams": ("Команды", "Teams"),
    "admin.widgets": ("Виджеты", "Widgets"),
    "admin.templates": ("Шаблоны ответов", "Reply templates"),
    "admin.new_user": ("Новый сотрудник", "New staff member"),
    "admin.new_team": ("Новая команда", "New team"),
    "admin.new_template": ("Новый шаблон", "New template"),
    "admin.queues": ("Очереди", "Queues"),
    "admin.new_queue": ("Новая очередь", "New queue"),
    "field.login": ("Логин", "Login"),
    "field.name": ("Имя", "Name"),
    "field.password": ("Пароль", "Password"),
    "field.new_password": ("Новый пароль", "New password"),
    "field.role": ("Роль", "Role"),
    "field.team": ("Команда", "Team"),
    "field.no_team": ("без команды", "no team"),
    "field.capacity": ("Диалогов одновременно", "Dialogs at once"),
    "field.active": ("Активен", "Active"),
    "field.greeting": ("Приветствие", "Greeting"),
    "field.info_message": (
        "Информационное сообщение (например, о высокой нагрузке)",
        "Info message (e.g. about high load)",
    ),
    "field.color": ("Цвет", "Colour"),
    "field.origins": (
        "Сайты, где разрешён виджет (по одному в строке)",
        "Sites allowed to embed the widget (one per line)",
    ),
    "field.key": ("Ключ виджета", "Widget key"),
    "field.widget_topic": ("Тема обращений с этого виджета", "Topic of dialogs from this widget"),
    "field.widget_topic_hint": (
        "Для маршрутизации: диалог попадёт в очередь с этой темой, например cards; пусто — "
        "тему определит бот или оператор",
        "For routing: the dialog joins the queue with this topic, e.g. cards; empty: the bot "
        "or an operator sets the topic",
    ),
    "field.scope": ("Доступ", "Scope"),
    "field.shortcut": ("Сокращение", "Shortcut"),
    "field.title": ("Название", "Title"),
    "field.body": ("Текст", "Text"),
    "field.placeholders": (
        "Подстановки: {{customer.first_name}}, {{customer.name}}, "
        "{{operator.first_name}}, {{operator.name}}",
        "Placeholders: {{customer.first_name}}, {{customer.name}}, "
        "{{operator.first_name}}, {{operator.name}}",
    ),
    "field.skills": ("Навыки", "Skills"),
    "field.skills_hint": (
        "Через запятую навык:уровень (1–5), например cards:3, credits:1; без уровня — 1",
        "Comma-separated skill:level (1–5), e.g. cards:3, credits:1; no level means 1",
    ),
    "field.queue_name": ("Название", "Name"),
    "field.topic": ("Тема", "Topic"),
    "field.priority": ("Приоритет", "Priority"),
    "field.skill": ("Нужный навык", "Skill needed"),
    "field.min_skill_level": ("Уровень навыка не ниже", "Skill level at least"),
    "field.strategy": ("Кому отдавать диалог", "Who gets the dialog"),
    "field.is_default": (
        "Очередь по умолчанию (диалоги без темы или с незнакомой темой)",
        "Default queue (dialogs with no topic or an unknown one)",
    ),
    "field.overflow_team": ("Команда на случай переполнения", "Overflow team"),
    "field.overflow_after": (
        "Подключать её, когда клиент ждёт дольше, секунд",
        "Let it help once a customer waits longer than, seconds",
    ),
    "field.hours": ("Часы работы", "Business hours"),
    "field.timezone": ("Часовой пояс", "Time zone"),
    "field.holidays": (
        "Праздники, когда очередь закрыта (даты через запятую)",
        "Holidays when the queue is closed (comma-separated dates)",
    ),
    "field.out_of_hours_message": (
        "Сообщение клиенту в нерабочее время",
        "Message to the customer out of hours",
    ),
    "field.queue_active": ("Очередь работает", "Queue in use"),
    "day.mon": ("Понедельник", "Monday"),
    "day.tue": ("Вторник", "Tuesday"),
    "day.wed": ("Среда", "Wednesday"),
    "day.thu": ("Четверг", "Thursday"),
    "day.fri": ("Пятница", "Friday"),
    "day.sat": ("Суббота", "Saturday"),
    "day.sun": ("Воскресенье", "Sunday"),
    "strategy.least_loaded": ("Наименее загруженному", "Least loaded"),
    "strategy.longest_idle": ("Дольше всех без нового диалога", "Longest idle"),
    "queue.topic_hint": (
        "Диалоги с этой темой ждут в этой очереди: тема точки входа (виджета), бота или "
        "передачи, например cards",
        "Dialogs with this topic wait in this queue: the topic of the entry point (widget), "
        "the bot or a transfer, e.g. cards",
    ),
    "queue.priority_hint": (
        "Больше — раньше других очередей; например, мошенничество 100",
        "Higher goes before other queues; e.g. fraud 100",
    ),
    "queue.skill_hint": (
        "Пусто — подойдёт любой оператор команды",
        "Empty: any operator of the team will do",
    ),
    "queue.hours_hint": (
        "Для каждого дня интервал вида 09:00-18:00 (несколько — через запятую); пустой "
        "день — выходной. Если не заполнен ни один день — круглосуточно.",
        "For each day a span like 09:00-18:00 (several: comma-separated); an empty day is "
        "closed. With no day filled in the queue works around the clock.",
    ),
    "queue.out_of_hours_hint": (
        "okno добавит, когда ответим, например «Ответим 12.01 в 09:00»",
        "okno adds when the answer will come, e.g. “Ответим 12.01 в 09:00”",
    ),
    "queue.skill_level": ("Навык / уровень", "Skill / level"),
    "queue.overflow": ("Переполнение", "Overflow"),
    "queue.overflow_value": ("{team} через {after}", "{team} after {after}"),
    "queue.open_now": ("Сейчас", "Now"),
    "queue.open": ("открыта", "open"),
    "queue.closed": ("закрыта", "closed"),
    "queue.always": ("круглосуточно", "around the clock"),
    "queue.inactive": ("выключена", "not in use"),
    "queue.default": ("по умолчанию", "default"),
    "queue.any_team": ("любая команда", "any team"),
    "queue.none": (
        "Очередей пока нет: все диалоги ждут в одной общей очереди",
        "No queues yet: every dialog waits in one common line",
    ),
    "role.operator": ("Оператор", "Operator"),
    "role.supervisor": ("Супервизор", "Supervisor"),
    "role.admin": ("Администратор", "Administrator"),
    "scope.personal": ("Личный", "Personal"),
    "scope.team": ("Команды", "Team"),
    "scope.shared": ("Общий", "Shared"),
    # form checks by pydantic error type (the API's English text is the fallback)
    "invalid.missing": ("Заполните это поле", "Fill in this field"),
    "invalid.string_too_short": (
        "Слишком коротко: нужно от {min_length} символов",
        "Too short: at least {min_length} characters",
    ),
    "invalid.string_too_long": (
        "Слишком длинно: не больше {max_length} символов",
        "Too long: at most {max_length} characters",
    ),
    "invalid.string_pattern_mismatch": ("Недопустимые символы", "Characters not allowed here"),
    "invalid.greater_than_equal": ("Не меньше {ge}", "At least {ge}"),
    "invalid.less_than_equal": ("Не больше {le}", "At most {le}"),
    "invalid.int_parsing": ("Нужно целое число", "A whole number, please"),
    "invalid.literal_error": ("Выберите одно из значений списка", "Pick one of the listed values"),
    "invalid.invalid_skills": (
        "Навыки: название из букв, цифр, _ или - и уровень от 1 до 5, например cards:3, credits:1",
        "Skills: a name of letters, digits, _ or - and a level 1 to 5, e.g. cards:3, credits:1",
    ),
    # errors by server code; the server's English detail is the fallback
    "error.generic": ("Ошибка {status}", "Error {status}"),
    "error.bad_credentials": ("Неверный логин или пароль", "Wrong login or password"),
    "error.account_disabled": ("Учётная запись отключена", "This account is disabled"),
    "error.already_assigned": (
        "Диалог уже взял другой оператор",
        "Another operator has taken this dialog",
    ),
    "error.conversation_closed": ("Диалог закрыт", "The dialog is closed"),
    "error.not_assignee": (
        "Это может сделать только ответственный оператор или супервизор",
        "Only the assigned operator or a supervisor can do this",
    ),
    "error.same_assignee": ("Диалог уже у этого оператора", "The dialog is already theirs"),
    "error.forbidden_role": ("Недостаточно прав", "Not allowed for your role"),
    "error.forbidden_team": (
        "Этот диалог принадлежит другой команде",
        "This dialog belongs to another team",
    ),
    "error.too_many_requests": (
        "Слишком много запросов, подождите немного",
        "Too many requests; wait a moment",
    ),
    "error.weak_password": (
        "Пароль слишком простой: нужно не меньше 10 символов",
        "The password is too weak: at least 10 characters",
    ),
    "error.unknown_team": ("Нет такой команды", "No such team"),
    "error.unknown_placeholder": (
        "Неизвестная подстановка {{{unknown}}}; можно {{customer.first_name}}, "
        "{{customer.name}}, {{operator.first_name}}, {{operator.name}}",
        "Unknown placeholder {{{unknown}}}; use {{customer.first_name}}, "
        "{{customer.name}}, {{operator.first_name}}, {{operator.name}}",
    ),
    "error.invalid_skills": (
        "Навыки: название из букв, цифр, _ или - и уровень от 1 до 5, например cards:3, credits:1",
        "Skills: a name of letters, digits, _ or - and a level 1 to 5, e.g. cards:3, credits:1",
    ),
    "error.bad_hours": (
        "Часы работы не распознаны: интервалы вида 09:00-18:00 (часы 00–23), даты вида "
        "2026-12-31, часовой пояс вида Europe/Moscow",
        "Business hours not understood: spans like 09:00-18:00 (hours 00–23), dates like "
        "2026-12-31, a time zone like Europe/Moscow",
    ),
    "error.bad_strategy": ("Выберите стратегию из списка", "Pick a strategy from the list"),
    "error.name_taken": ("Такое название уже есть", "This name is taken"),
    "error.topic_taken": (
        "Эта тема уже у другой очереди",
        "Another queue already has this topic",
    ),
    "error.queue_not_found": ("Очередь не найдена", "No such queue"),
    "error.login_taken": ("Такой логин уже есть", "This login is taken"),
    "error.team_exists": ("Такая команда уже есть", "This team exists"),
    "error.key_taken": ("Такой ключ уже используется", "This key is in use"),
    "error.self_lockout": (
        "Нельзя отключить или понизить самого себя",
        "You cannot disable or demote yourself",
    ),
    "error.open_conversation_exists": (
        "У клиента уже есть открытый диалог",
        "The customer has another open dialog",
    ),
    "error.unsupported_media": (
        "Можно отправлять изображения (PNG, JPEG, GIF, WebP) и PDF",
        "Images (PNG, JPEG, GIF, WebP) and PDF only",
    ),
    "error.payload_too_large": ("Файл слишком большой", "The file is too large"),
}


def texts(lang: str) -> dict[str, str]:
    """The whole table in one language (what the browser code receives)."""
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0
    return {key: pair[index] for key, pair in TEXTS.items()}


def pick_language(cookie: str | None) -> str:
    """The language chosen with the switch, else Russian: a Russian bank's staff expect it
    whatever their browser says, so the Accept-Language header does not override it."""
    if cookie in LANGUAGES:
        return cookie
    return DEFAULT_LANGUAGE


def fill(text: str, values: dict[str, object]) -> str:
    """``{name}`` placeholders filled like the browser does it (not str.format, which would
    trip over the ``{{customer.name}}`` examples in the texts)."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text
