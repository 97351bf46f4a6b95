"""Everything the diary says to its users, in Korean first and English."""

from __future__ import annotations

from maeum.labels import display_name

LANGS: tuple[str, ...] = ("ko", "en")

EMOJI: dict[str, str] = {
    "happiness": "😊",
    "neutral": "😐",
    "surprise": "😮",
    "sadness": "😢",
    "anger": "😠",
    "disgust": "🤢",
    "fear": "😨",
    "contempt": "😒",
}

MESSAGES: dict[str, tuple[str, str]] = {
    # navigation and page titles
    "app_name": ("마음 일기", "maeum diary"),
    "nav_new": ("새 일기", "New entry"),
    "nav_calendar": ("달력", "Calendar"),
    "nav_stats": ("통계", "Statistics"),
    "nav_profile": ("프로필", "Profile"),
    "nav_account": ("계정", "Account"),
    "logout": ("로그아웃", "Log out"),
    "login": ("로그인", "Log in"),
    "signup": ("회원가입", "Sign up"),
    "other_lang": ("English", "한국어"),
    "home_title": ("나의 일기", "My diary"),
    "home_empty": (
        "아직 일기가 없습니다. 오늘의 셀카와 하루를 기록해 보세요.",
        "No entries yet. Record today with a selfie and a few lines.",
    ),
    "tagline": (
        "셀카 한 장과 몇 줄의 하루가 오늘의 감정이 됩니다.",
        "A selfie and a few lines become the day's emotion.",
    ),
    # accounts
    "username": ("아이디", "Username"),
    "password": ("비밀번호", "Password"),
    "password_again": ("비밀번호 확인", "Password again"),
    "name": ("이름", "Name"),
    "intro": ("한 줄 소개 (선택)", "Short introduction (optional)"),
    "have_account": ("이미 계정이 있나요?", "Already have an account?"),
    "no_account": ("계정이 없나요?", "No account yet?"),
    "username_invalid": (
        "아이디는 영문 소문자, 숫자, ._- 로 3~32자여야 합니다.",
        "Usernames are 3-32 characters: lowercase letters, digits and . _ -",
    ),
    "username_taken": ("이미 사용 중인 아이디입니다.", "That username is taken."),
    "password_short": ("비밀번호는 8자 이상이어야 합니다.", "Passwords need at least 8 characters."),
    "password_mismatch": ("비밀번호가 서로 다릅니다.", "The passwords differ."),
    "name_required": ("이름을 입력해 주세요.", "Please enter your name."),
    "name_too_long": ("이름은 50자 이하로 입력해 주세요.", "Names are at most 50 characters."),
    "intro_too_long": ("소개는 500자 이하로 입력해 주세요.", "Introductions are at most 500 characters."),
    "login_failed": ("아이디 또는 비밀번호가 올바르지 않습니다.", "Wrong username or password."),
    "login_limited": (
        "로그인 시도가 너무 많습니다. {minutes}분 후에 다시 시도해 주세요.",
        "Too many login attempts. Try again in {minutes} minutes.",
    ),
    "session_expired": (
        "세션이 만료되었습니다. 다시 로그인해 주세요. 작성 중이던 일기는 이 브라우저에 보관되어 있습니다.",
        "Your session expired. Please log in again; the entry you were writing is kept in this browser.",
    ),
    "login_required": ("로그인이 필요합니다.", "Please log in."),
    "csrf_failed": (
        "요청을 확인할 수 없습니다. 페이지를 새로 고친 뒤 다시 시도해 주세요.",
        "This request could not be verified. Reload the page and try again.",
    ),
    # profile and account
    "profile_title": ("프로필", "Profile"),
    "profile_saved": ("프로필을 저장했습니다.", "Profile saved."),
    "save": ("저장", "Save"),
    "share_labels": (
        "내가 확인한 감정을 maeum 모델 개선용 데이터로 제공합니다",
        "Let my confirmed emotions help train maeum's models",
    ),
    "account_title": ("계정", "Account"),
    "export_all": ("내 데이터 전체 내려받기 (JSON + 사진, zip)", "Download all my data (JSON + photos, zip)"),
    "export_dataset": (
        "확인한 감정으로 학습 데이터셋 내려받기 (maeum train)",
        "Download my confirmed emotions as a training dataset (maeum train)",
    ),
    "delete_account": ("계정 삭제", "Delete account"),
    "delete_account_help": (
        "모든 일기와 사진이 영구히 삭제됩니다. 비밀번호를 입력해 확인해 주세요.",
        "All entries and photos are deleted for good. Enter your password to confirm.",
    ),
    "account_deleted": ("계정과 모든 데이터를 삭제했습니다.", "Your account and all its data were deleted."),
    "password_wrong": ("비밀번호가 올바르지 않습니다.", "Wrong password."),
    # posting
    "new_title": ("오늘의 일기", "Today's entry"),
    "selfie": ("셀카", "Selfie"),
    "selfie_help": ("JPEG, PNG, WebP · 최대 {mb}MB", "JPEG, PNG, WebP · up to {mb} MB"),
    "camera_start": ("카메라로 찍기", "Use the camera"),
    "camera_shoot": ("촬영", "Take photo"),
    "camera_unavailable": (
        "카메라를 사용할 수 없습니다. 사진 파일을 선택해 주세요.",
        "The camera is not available; choose a photo file instead.",
    ),
    "day": ("날짜", "Date"),
    "diary_text": ("오늘 하루", "Your day"),
    "diary_placeholder": ("오늘 어떤 하루였나요?", "How was your day?"),
    "post_submit": ("기록하기", "Save entry"),
    "text_required": ("일기 내용을 입력해 주세요.", "Please write a few lines about your day."),
    "text_too_long": ("일기는 {chars}자 이하로 써 주세요.", "Entries are at most {chars} characters."),
    "day_invalid": ("날짜 형식이 올바르지 않습니다.", "That date is not valid."),
    "day_future": ("미래 날짜의 일기는 쓸 수 없습니다.", "Entries cannot be dated in the future."),
    "image_missing": ("셀카를 선택하거나 촬영해 주세요.", "Please choose or take a selfie."),
    "image_too_large_bytes": (
        "사진이 너무 큽니다. {mb}MB 이하의 사진을 올려 주세요.",
        "The photo is too large; upload one of at most {mb} MB.",
    ),
    "image_too_many_pixels": (
        "사진의 해상도가 너무 큽니다 (최대 {mp}백만 화소).",
        "The photo has too many pixels (at most {mp} megapixels).",
    ),
    "image_too_small": (
        "사진이 너무 작습니다 (가로·세로 {side}픽셀 이상).",
        "The photo is too small (at least {side} pixels a side).",
    ),
    "image_wrong_type": ("JPEG, PNG, WebP 사진만 올릴 수 있습니다.", "Only JPEG, PNG and WebP photos can be uploaded."),
    "image_corrupt": ("사진 파일이 손상되어 읽을 수 없습니다.", "The photo file is damaged and cannot be read."),
    "no_face": (
        "이미지에서 얼굴을 인식하지 못했습니다. 얼굴이 잘 보이는 사진으로 다시 시도해 주세요. "
        "일기는 저장되지 않았습니다.",
        "No face was found in the image. Try a photo where your face is clearly visible. Nothing was saved.",
    ),
    "pick_title": ("어느 얼굴이 나인가요?", "Which face is yours?"),
    "pick_help": ("사진에서 얼굴을 {n}개 찾았습니다. 내 얼굴을 골라 주세요.", "{n} faces were found. Pick yours."),
    "face_n": ("{n}번 얼굴", "Face {n}"),
    "pick_submit": ("이 얼굴로 기록하기", "Save with this face"),
    "face_choice_invalid": ("얼굴을 하나 골라 주세요.", "Please pick one face."),
    "pending_not_found": (
        "선택을 기다리던 사진이 없거나 만료되었습니다. 다시 올려 주세요.",
        "That upload is gone or expired; please post again.",
    ),
    # a post
    "post_not_found": ("일기를 찾을 수 없습니다.", "Entry not found."),
    "emotion_is": ("오늘의 감정", "Today's emotion"),
    "is_this_you": ("이 감정이 맞나요?", "Is this your feeling?"),
    "yes_right": ("네, 맞아요", "Yes, that's right"),
    "no_other": ("아니요, 다른 감정이에요:", "No, it was:"),
    "feedback_confirmed": ("확인한 감정", "Confirmed"),
    "feedback_corrected": ("직접 고친 감정 (모델: {model})", "Corrected by you (model said {model})"),
    "feedback_saved": ("감정을 기록했습니다. 고맙습니다!", "Thanks, your answer is saved."),
    "label_invalid": ("알 수 없는 감정입니다.", "Unknown emotion."),
    "scores": ("감정 점수", "Emotion scores"),
    "delete_post": ("이 일기 삭제", "Delete this entry"),
    "post_deleted": ("일기를 삭제했습니다.", "Entry deleted."),
    "back": ("돌아가기", "Back"),
    # calendar and statistics
    "calendar_title": ("{year}년 {month}월", "{month_name} {year}"),
    "prev_month": ("이전 달", "Previous month"),
    "next_month": ("다음 달", "Next month"),
    "month_empty": ("이 달에는 작성한 일기가 없습니다.", "No entries this month."),
    "month_invalid": ("달 형식이 올바르지 않습니다 (예: 2026-11).", "Months look like 2026-11."),
    "weekdays": ("일 월 화 수 목 금 토", "Sun Mon Tue Wed Thu Fri Sat"),
    "stats_title": ("감정 통계", "Emotion statistics"),
    "stats_counts": ("감정별 기록 수", "Entries per emotion"),
    "stats_trend": ("최근 12주 감정 흐름", "Emotions over the last 12 weeks"),
    "stats_total": ("전체 일기 {n}편", "{n} entries in all"),
    "streak_current": ("연속 기록 {n}일째", "Current streak: {n} days"),
    "streak_longest": ("최장 연속 기록 {n}일", "Longest streak: {n} days"),
    "stats_empty": ("통계를 보려면 일기를 먼저 써 주세요.", "Write an entry to see statistics."),
    # errors
    "error_title": ("문제가 생겼습니다", "Something went wrong"),
    "request_too_large": ("요청이 너무 큽니다 (최대 {mb}MB).", "The request is too large (at most {mb} MB)."),
    "not_found": ("페이지를 찾을 수 없습니다.", "Page not found."),
    "bad_request": (
        "요청이 올바르지 않습니다. 입력한 내용을 확인해 주세요.",
        "The request is not valid; check what you entered.",
    ),
    "server_error": (
        "서버 오류가 발생했습니다. 저장되지 않은 내용은 없는지 확인해 주세요.",
        "A server error occurred. Nothing was half-saved; please try again.",
    ),
}


def translate(key: str, lang: str, **params: object) -> str:
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    text = pair[0] if lang == "ko" else pair[1]
    return text.format(**params) if params else text


def emotion_name(label: str, lang: str) -> str:
    return display_name(label, "ko") if lang == "ko" else label.capitalize()
