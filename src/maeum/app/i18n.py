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
    "password_weak": (
        "너무 쉬운 비밀번호입니다. 한 글자만 반복하거나, 아이디와 같거나, 흔히 쓰이는 비밀번호는 쓸 수 없습니다.",
        "That password is too easy to guess: not one character repeated, not your username, not a common password.",
    ),
    "password_same": ("새 비밀번호가 지금 비밀번호와 같습니다.", "The new password is the same as the current one."),
    "signed_out": ("로그아웃했습니다.", "You are logged out."),
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
    "method_not_allowed": (
        "이 주소는 양식을 보낼 때만 쓰입니다. 처음 화면에서 다시 시작해 주세요.",
        "This address is only for sending a form. Please start again from the home page.",
    ),
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
    "dataset_too_small": (
        "학습 데이터셋을 만들려면 감정을 확인하거나 고친 일기가 {min}편 이상 필요합니다 (지금 {n}편). "
        "일기 화면의 “이 감정이 맞나요?”에 답해 주세요.",
        "A training dataset needs at least {min} entries whose emotion you confirmed or corrected (now {n}). "
        "Answer “Is this your feeling?” on your entries.",
    ),
    "delete_account": ("계정 삭제", "Delete account"),
    "delete_account_help": (
        "모든 일기와 사진이 영구히 삭제됩니다. 비밀번호를 입력해 확인해 주세요.",
        "All entries and photos are deleted for good. Enter your password to confirm.",
    ),
    "account_deleted": ("계정과 모든 데이터를 삭제했습니다.", "Your account and all its data were deleted."),
    "password_wrong": ("비밀번호가 올바르지 않습니다.", "Wrong password."),
    "change_password": ("비밀번호 변경", "Change password"),
    "current_password": ("현재 비밀번호", "Current password"),
    "new_password": ("새 비밀번호", "New password"),
    "new_password_again": ("새 비밀번호 확인", "New password again"),
    "change_password_help": (
        "바꾸면 다른 기기와 브라우저에서는 로그아웃되고, 이 브라우저는 로그인한 채로 남습니다.",
        "Changing it logs you out on other devices and browsers; this one stays logged in.",
    ),
    "password_changed": (
        "비밀번호를 바꿨습니다. 다른 기기에서는 로그아웃되었습니다.",
        "Password changed. Other devices were logged out.",
    ),
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
    "text_help": ("{chars:,}자까지 쓸 수 있어요.", "Up to {chars:,} characters."),
    "draft_shortened": (
        "대화가 길어서 초안을 {chars:,}자 안으로 줄였어요. 빠진 뒷부분은 대화 페이지에서 확인해 주세요.",
        "The chat was long, so the draft stops within {chars:,} characters; the rest is on the chat page.",
    ),
    "post_submit": ("기록하기", "Save entry"),
    "text_required": ("일기 내용을 입력해 주세요.", "Please write a few lines about your day."),
    "text_too_long": ("일기는 {chars:,}자 이하로 써 주세요.", "Entries are at most {chars:,} characters."),
    "day_invalid": ("날짜 형식이 올바르지 않습니다.", "That date is not valid."),
    "day_future": ("미래 날짜의 일기는 쓸 수 없습니다.", "Entries cannot be dated in the future."),
    "image_missing": ("셀카를 선택하거나 촬영해 주세요.", "Please choose or take a selfie."),
    "image_too_large_bytes": (
        "사진이 너무 큽니다. {mb}MB 이하의 사진을 올려 주세요.",
        "The photo is too large; upload one of at most {mb} MB.",
    ),
    "image_too_many_pixels": (
        "사진의 해상도가 너무 큽니다 (최대 {man:,}만 화소).",
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
    "pending_expires": (
        "{hours}시간 안에 얼굴을 고르지 않으면 사진과 글이 지워집니다.",
        "Unless you pick a face within {hours} h, the photo and the text are deleted.",
    ),
    "pending_expires_photo": (
        "{hours}시간 안에 얼굴을 고르지 않으면 이 새 사진만 지워지고, 일기는 지금 모습 그대로 남습니다.",
        "Unless you pick a face within {hours} h, only this new photo is deleted; the entry stays as it is.",
    ),
    "pending_title": ("얼굴 선택을 기다리는 일기", "Entries waiting for a face choice"),
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
    "edit_post": ("이 일기 고치기", "Edit this entry"),
    "edit_title": ("일기 고치기", "Edit entry"),
    "edit_help": (
        "날짜와 글, 사진을 고칠 수 있어요. 글이 바뀌면 코멘트를 새로 써요.",
        "Change the date, the text or the photo. A new text gets a new comment.",
    ),
    "photo_replace": ("사진 바꾸기 (선택)", "New photo (optional)"),
    "photo_replace_help": (
        "새 사진을 올리면 그 얼굴에서 감정을 다시 읽고, 노래와 코멘트도 새로 골라요. "
        "올리지 않으면 지금 사진 그대로예요.",
        "A new photo's face gives the entry its emotion anew, with new songs and a new comment. Without one, "
        "the photo stays.",
    ),
    "edit_submit": ("고친 내용 저장", "Save changes"),
    "post_edited": ("일기를 고쳤습니다.", "Entry updated."),
    "edited": ("수정됨", "edited"),
    "delete_post": ("이 일기 삭제", "Delete this entry"),
    "post_deleted": ("일기를 삭제했습니다.", "Entry deleted."),
    "delete_post_confirm": (
        "이 일기를 삭제할까요? 사진과 코멘트도 함께 지워지며 되돌릴 수 없습니다.",
        "Delete this entry? Its photo and comment go too, and this cannot be undone.",
    ),
    "delete_post_submit": ("삭제하기", "Delete"),
    "cancel": ("취소", "Cancel"),
    "back": ("돌아가기", "Back"),
    # calendar and statistics
    "calendar_title": ("{year}년 {month}월", "{month_name} {year}"),
    "prev_month": ("이전 달", "Previous month"),
    "next_month": ("다음 달", "Next month"),
    "month_empty": ("이 달에는 작성한 일기가 없습니다.", "No entries this month."),
    "month_invalid": ("달 형식이 올바르지 않습니다 (예: 2026-11).", "Months look like 2026-11."),
    "day_title": ("{year}년 {month}월 {day}일", "{month_name} {day}, {year}"),
    "day_empty": ("이 날에는 작성한 일기가 없습니다.", "No entries on this day."),
    "day_entries": ("이 날의 일기 {n}편 보기", "See this day's {n} entries"),
    "older_posts": ("지난 일기 더 보기", "Older entries"),
    "newer_posts": ("최근 일기", "Newer entries"),
    "search_words": ("일기에서 찾을 말", "Words to find in your entries"),
    "search_emotion": ("감정", "Emotion"),
    "search_every_emotion": ("모든 감정", "Every emotion"),
    "search": ("찾기", "Search"),
    "search_clear": ("모두 보기", "Show all"),
    "search_empty": ("찾는 일기가 없습니다.", "No entry matches."),
    "page_empty": ("이 쪽에는 일기가 없습니다.", "No entries on this page."),
    "weekdays": ("일 월 화 수 목 금 토", "Sun Mon Tue Wed Thu Fri Sat"),
    "stats_title": ("감정 통계", "Emotion statistics"),
    "stats_counts": ("감정별 기록 수", "Entries per emotion"),
    "stats_trend": ("최근 12주 감정 흐름", "Emotions over the last 12 weeks"),
    "stats_total": ("전체 일기 {n}편", "{n} entries in all"),
    "streak_current": ("연속 기록 {n}일째", "Current streak: {n} days"),
    "streak_none": ("오늘 일기를 쓰면 연속 기록이 시작돼요", "Write today to start a streak"),
    "streak_longest": ("최장 연속 기록 {n}일", "Longest streak: {n} days"),
    "stats_empty": ("통계를 보려면 일기를 먼저 써 주세요.", "Write an entry to see statistics."),
    # the companion
    "nav_chat": ("대화", "Chat"),
    "nav_companion": ("AI 설정", "Companion"),
    "companion_title": ("AI 동반자 설정", "Companion settings"),
    "attitude": ("태도", "Attitude"),
    "attitude_friendly": ("친근한", "Friendly"),
    "attitude_polite": ("정중한", "Polite"),
    "attitude_playful": ("장난스러운", "Playful"),
    "composition": ("구성", "Composition"),
    "composition_help": ("하나도 고르지 않으면 모두 담아요.", "None chosen means all three."),
    "composition_empathy": ("공감", "Empathy"),
    "composition_comfort": ("위로", "Comfort"),
    "composition_advice": ("조언", "Advice"),
    "intensity": ("표현 강도", "Intensity"),
    "intensity_creative": ("창의적 (1.0)", "Creative (1.0)"),
    "intensity_normal": ("보통 (0.75)", "Normal (0.75)"),
    "intensity_calm": ("차분한 (0.5)", "Calm (0.5)"),
    "length": ("길이", "Length"),
    "length_short": ("짧게 (약 150자)", "Short (about 150 characters)"),
    "length_medium": ("보통 (약 300자)", "Medium (about 300 characters)"),
    "length_long": ("길게 (약 450자)", "Long (about 450 characters)"),
    "endpoint_title": ("AI 모델 연결 (선택)", "Language model (optional)"),
    "endpoint_help": (
        "OpenAI 호환 서버(OpenAI, Ollama, vLLM, llama.cpp)의 주소와 모델 이름을 넣으면 그 모델이 코멘트를 씁니다. "
        "비워 두거나 연결이 안 되면 마음에 내장된 오프라인 작성기가 씁니다.",
        "Give the base URL and model of an OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp) and it "
        "writes the comments. Empty, or when it cannot be reached, maeum's built-in offline writer does.",
    ),
    "endpoint_private": (
        "이 서버에서는 사설망 주소도 쓸 수 있습니다.",
        "This server also allows private-network addresses.",
    ),
    "endpoint_url": ("서버 주소", "Base URL"),
    "endpoint_model": ("모델 이름", "Model"),
    "endpoint_key": ("API 키", "API key"),
    "endpoint_key_kept": ("저장된 키가 있습니다. 비워 두면 그대로 둡니다.", "A key is stored; leave empty to keep it."),
    "forget_key": ("저장된 키 지우기", "Forget the stored key"),
    "genres_title": ("감정별 선호 장르", "Preferred genres per emotion"),
    "genres_help": ("고른 장르의 곡을 먼저 추천해요.", "Songs of the chosen genres come first."),
    "catalogue_title": ("내 음악 목록 가져오기", "Import my song catalogue"),
    "catalogue_help": (
        "Spotify 오디오 특성 CSV(valence, energy 열이 있는 파일) 또는 멜론 차트 CSV를 올리면 추천에 더해집니다. "
        "다시 올리면 이전 목록을 바꿉니다.",
        "A Spotify audio-features CSV (with valence and energy columns) or a Melon chart CSV adds its songs "
        "to your recommendations. A new upload replaces the previous one.",
    ),
    "catalogue_format": ("형식", "Format"),
    "catalogue_spotify": ("Spotify 특성 CSV", "Spotify features CSV"),
    "catalogue_melon": ("멜론 차트 CSV", "Melon chart CSV"),
    "catalogue_genre": (
        "멜론: 장르 열이 없는 곡의 장르",
        "Melon: the genre of songs without a genre column",
    ),
    "catalogue_genre_none": ("파일에 적힌 대로", "As the file says"),
    "catalogue_upload": ("가져오기", "Import"),
    "catalogue_count": ("가져온 곡: {n}곡", "Imported songs: {n}"),
    "catalogue_remove": ("가져온 곡 지우기", "Remove imported songs"),
    "companion_saved": ("AI 설정을 저장했습니다.", "Companion settings saved."),
    "catalogue_saved": ("음악 목록을 가져왔습니다.", "Catalogue imported."),
    "catalogue_removed_saved": ("가져온 곡을 지웠습니다.", "Imported songs removed."),
    "companion_bad_choice": ("알 수 없는 값입니다 ({field}).", "Unknown value for {field}."),
    "endpoint_incomplete": ("서버 주소와 모델 이름을 함께 입력하세요.", "Give both the base URL and the model name."),
    # {reason} (from the endpoint guard) is for the log and the operator, not the page
    "endpoint_invalid": (
        "이 서버 주소는 쓸 수 없습니다. http:// 또는 https://로 시작하는 공개 주소나 이 컴퓨터의 주소(127.0.0.1, "
        "localhost)를 넣어 주세요. 사설망 주소(192.168.x.x, 10.x.x.x 등)는 이 서버를 운영하는 사람이 허용했을 때만 "
        "쓸 수 있습니다.",
        "This address cannot be used. Give a public address starting with http:// or https://, or this "
        "computer's (127.0.0.1, localhost). Private-network addresses (192.168.x.x, 10.x.x.x, …) work only "
        "when whoever runs this server allows them.",
    ),
    "catalogue_missing": ("CSV 파일을 골라 주세요.", "Choose a CSV file."),
    "catalogue_too_large": ("CSV 파일은 {mb}MB까지 올릴 수 있습니다.", "CSV files can be at most {mb} MB."),
    "catalogue_invalid": (
        "음악 목록을 읽을 수 없습니다. 고른 형식에 맞는 CSV인지, 곡마다 id와 제목이 있고 valence·energy가 0~1 "
        "사이인지 확인해 주세요. (원인: {reason})",
        "The catalogue cannot be read. Check that the CSV has the chosen format, that every song has an id and "
        "a title, and that valence and energy lie between 0 and 1. (Cause: {reason})",
    ),
    "comment_title": ("마음의 한마디", "A word from maeum"),
    "comment_pending": ("코멘트를 쓰는 중이에요…", "Writing a comment…"),
    "comment_llm": ("AI 모델이 썼어요", "Written by the language model"),
    "comment_offline": ("마음의 오프라인 작성기가 썼어요", "Written by maeum's offline writer"),
    "comment_fallback": (
        "AI 모델에 연결하지 못해 오프라인 작성기가 썼어요",
        "The language model could not be used, so the offline writer wrote this",
    ),
    "comment_rewrite": ("다시 쓰기", "Write again"),
    "comment_ask": ("코멘트 받기", "Ask for a comment"),
    "comment_not_ready": ("코멘트가 아직 준비되지 않았습니다.", "The comment is not ready yet."),
    "text_emotion": ("글에서 읽힌 감정", "Emotion in the text"),
    "crisis_title": ("혼자 견디지 않아도 돼요", "You don't have to carry this alone"),
    "crisis_help": (
        "지금 많이 힘들다면 자살예방상담전화 109 (24시간), 정신건강위기상담 1577-0199에 전화해 주세요. "
        "당장 위험하다면 119에 연락해 주세요.",
        "If you are thinking about suicide or hurting yourself, please contact your local emergency services "
        "or a crisis line now. In Korea: 109 (24 hours) or 1577-0199; emergencies 119.",
    ),
    "listen": ("🔊 듣기", "🔊 Listen"),
    "listen_stop": ("■ 멈추기", "■ Stop"),
    "tts_unavailable": ("서버에서 음성을 만들 수 없습니다.", "The server cannot read this aloud."),
    "music_title": ("오늘의 음악", "Songs for today"),
    "music_like": ("좋아요", "Like"),
    "music_liked": ("좋아요 ✓", "Liked ✓"),
    "music_skip": ("넘기기", "Skip"),
    "music_refresh": ("다른 곡 추천", "Other songs"),
    "music_empty": ("추천할 곡이 없습니다.", "No songs to recommend."),
    "lyrics_emotion": ("가사: {emotion}", "Lyrics: {emotion}"),
    "chat_title": ("오늘의 대화", "Today's chat"),
    "chat_intro": ("오늘 있었던 일을 편하게 이야기해 보세요.", "Tell me about your day."),
    "chat_placeholder": ("메시지를 입력하세요", "Write a message"),
    "chat_send": ("보내기", "Send"),
    "chat_to_diary": ("대화로 일기 쓰기", "Write my diary from our chat"),
    "chat_me": ("나", "Me"),
    "chat_companion": ("마음", "maeum"),
    "draft_ready": (
        "대화로 초안을 만들었어요. 고치고 사진을 더해 올려 주세요.",
        "A draft from our chat: edit it, add a selfie and post it.",
    ),
    "chat_message_invalid": ("메시지는 1~1000자로 써 주세요.", "Write a message of 1 to 1000 characters."),
    "chat_full": ("오늘은 대화를 더 저장할 수 없습니다.", "Today's chat is full."),
    "chat_empty": ("먼저 대화를 나눠 주세요.", "Chat first: there is nothing to write from yet."),
    "speak_start": ("🎤 말로 쓰기", "🎤 Dictate"),
    "speak_stop": ("■ 멈추기", "■ Stop"),
    "speech_unavailable": (
        "이 브라우저에서는 음성 입력을 쓸 수 없어요. 키보드로 입력해 주세요.",
        "Speech input is not available in this browser; please type.",
    ),
    "speech_failed": ("음성 인식에 실패했어요", "Speech recognition failed"),
    "dictation_recording": (
        "녹음 중이에요. 다 말했으면 '멈추기'를 눌러 주세요 (최대 {s}초).",
        "Recording. Press 'Stop' when you are done (at most {s} s).",
    ),
    "dictation_transcribing": ("서버에서 받아쓰는 중이에요…", "Transcribing on the server…"),
    "dictation_nothing": ("알아들은 말이 없어요. 다시 해 볼까요?", "No words were heard. Try again?"),
    "dictation_lang_invalid": ("받아쓰기 언어는 ko 또는 en이어야 합니다.", "The dictation language must be ko or en."),
    "dictation_unavailable": (
        "이 서버에는 음성 인식이 설치되어 있지 않아요.",
        "Speech recognition is not installed on this server.",
    ),
    "audio_unreadable": ("녹음 파일을 읽을 수 없어요.", "The recording could not be read."),
    "audio_too_long": ("녹음은 {s}초까지 받아쓸 수 있어요.", "Recordings can be at most {s} seconds long."),
    "audio_too_large": ("녹음 파일은 {mb}MB까지 올릴 수 있어요.", "Recordings can be at most {mb} MB."),
    # errors
    "error_title": ("문제가 생겼습니다", "Something went wrong"),
    "request_too_large": (
        "보낸 파일이 너무 큽니다. 더 작은 파일로 다시 시도해 주세요.",
        "What was sent is too large; try again with a smaller file.",
    ),
    "not_found": ("페이지를 찾을 수 없습니다.", "Page not found."),
    "bad_emotion": (
        "알 수 없는 감정입니다 ({emotion}). 다음 중 하나: {labels}",
        "Unknown emotion {emotion}; one of: {labels}",
    ),
    "bad_request": (
        "요청이 올바르지 않습니다. 입력한 내용을 확인해 주세요.",
        "The request is not valid; check what you entered.",
    ),
    "server_error": (
        "서버 오류가 발생했습니다. 저장되지 않은 내용은 없는지 확인해 주세요.",
        "A server error occurred. Nothing was half-saved; please try again.",
    ),
}


# English messages counting one thing ({n} == 1); Korean has no plural.
ENGLISH_ONE: dict[str, str] = {
    "stats_total": "1 entry in all",
    "streak_current": "Current streak: 1 day",
    "streak_longest": "Longest streak: 1 day",
    "day_entries": "See this day's entry",
}


def translate(key: str, lang: str, **params: object) -> str:
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    english = ENGLISH_ONE.get(key, pair[1]) if params.get("n") == 1 else pair[1]
    text = pair[0] if lang == "ko" else english
    return text.format(**params) if params else text


def emotion_name(label: str, lang: str) -> str:
    return display_name(label, "ko") if lang == "ko" else label.capitalize()
