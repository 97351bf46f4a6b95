// maeum diary: webcam capture into the upload field, a draft of the diary text and date kept in
// this browser until the entry (new or edited) is saved (so an expired session or a refused photo
// loses nothing), asking before an entry is deleted, the companion's comment appearing when written,
// reading it aloud, and dictating the diary.
"use strict";

// Drafts are kept per user ("maeum-draft:ID") and all forgotten at logout and account deletion, so the
// next person on a shared browser never finds them. The unkeyed "maeum-draft" of older versions is dropped.
const DRAFT_PREFIX = "maeum-draft:";

// A kept draft: {text, day} (the date input's value), or null.
function readDraft(key) {
  try {
    const draft = JSON.parse(localStorage.getItem(key));
    return draft && typeof draft.text === "string" ? draft : null;
  } catch (err) {
    return null; // not ours
  }
}

document.addEventListener("DOMContentLoaded", () => {
  localStorage.removeItem("maeum-draft");
  if (document.body.dataset.forgetDrafts) {
    Object.keys(localStorage).filter((k) => k.startsWith(DRAFT_PREFIX)).forEach((k) => localStorage.removeItem(k));
  }
  const clear = document.body.dataset.clearDraft;
  if (clear) localStorage.removeItem(clear);

  const text = document.querySelector("textarea[data-draft]");
  if (text) {
    const key = text.dataset.draft;
    const day = document.getElementById("day");
    // Editing a saved entry: its draft ("maeum-draft:USER:post:ID") remembers which version of the entry it
    // was made from, and is offered only over that version (one left from before another edit is dropped).
    const base = text.dataset.draftBase;
    const saved = readDraft(key);
    const keep = () => localStorage.setItem(key, JSON.stringify({ text: text.value, day: day ? day.value : "", base }));
    const restore = () => {
      text.value = saved.text;
      if (day && saved.day && (!day.max || saved.day <= day.max)) day.value = saved.day;
    };
    if (text.dataset.fromChat) keep(); // a draft written from the chat wins
    else if (base) {
      if (saved && saved.text && saved.base === base) restore();
      else if (saved) localStorage.removeItem(key);
    } else if (saved && saved.text && !text.value) restore();
    text.addEventListener("input", keep);
    if (day) day.addEventListener("change", () => { if (text.value) keep(); });
  }
  // "Cancel" on the edit page: the changes are not wanted, so neither is their draft.
  document.querySelectorAll("a[data-discard-draft]").forEach((link) => {
    link.addEventListener("click", () => localStorage.removeItem(link.dataset.discardDraft));
  });

  // Deleting asks first; without this script the server shows a confirmation page instead.
  const remove = document.querySelector("form[data-confirm]");
  if (remove) {
    remove.addEventListener("submit", (event) => {
      if (!confirm(remove.dataset.confirm)) {
        event.preventDefault();
        return;
      }
      remove.elements.confirm.value = "1";
    });
  }

  pollComment();
  setUpListen();
  setUpDictation(text);

  const photo = document.getElementById("photo");
  const preview = document.getElementById("photo-preview");
  const showPreview = (file) => {
    if (!preview || !file) return;
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
  };
  if (photo) photo.addEventListener("change", () => showPreview(photo.files[0]));

  const start = document.getElementById("camera-start");
  const box = document.getElementById("camera");
  const video = document.getElementById("camera-video");
  const shoot = document.getElementById("camera-shoot");
  if (!start || !box || !video || !shoot || !photo) return;
  let stream = null;
  start.addEventListener("click", async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false });
      video.srcObject = stream;
      box.hidden = false;
    } catch (err) {
      alert(start.dataset.unavailable);
    }
  });
  shoot.addEventListener("click", () => {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob((blob) => {
      const file = new File([blob], "camera.jpg", { type: "image/jpeg" });
      const transfer = new DataTransfer();
      transfer.items.add(file);
      photo.files = transfer.files;
      showPreview(file);
      if (stream) stream.getTracks().forEach((t) => t.stop());
      box.hidden = true;
    }, "image/jpeg", 0.92);
  });
});

// The comment is written in the background: ask until it is there, then put the page's new comment
// section in place of the old one, so a choice being made elsewhere on the page is not lost.
function pollComment() {
  const box = document.getElementById("comment");
  if (!box || box.dataset.status !== "pending") return;
  let tries = 0;
  const ask = async () => {
    tries += 1;
    try {
      const reply = await fetch(box.dataset.poll, { credentials: "same-origin" });
      if (reply.ok && (await reply.json()).status === "done") {
        await showComment(box);
        return;
      }
    } catch (err) {
      // offline for a moment: keep asking
    }
    if (tries < 120) setTimeout(ask, tries < 10 ? 500 : 2000);
  };
  setTimeout(ask, 500);
}

async function showComment(box) {
  const page = await fetch(location.href, { credentials: "same-origin" });
  const fresh = page.ok ? new DOMParser().parseFromString(await page.text(), "text/html").getElementById("comment") : null;
  if (!fresh || fresh.dataset.status !== "done") {
    location.reload();
    return;
  }
  box.replaceWith(document.adoptNode(fresh));
  setUpListen();
}

// Read the comment aloud: the browser's Korean voice when it has one, else the server's WAV (espeak-ng).
function setUpListen() {
  const button = document.getElementById("listen");
  const audio = document.getElementById("listen-audio");
  const text = document.getElementById("comment-text");
  if (!button || !audio || !text) return;
  const label = button.textContent;
  const done = () => { button.textContent = label; button.dataset.playing = ""; };
  const koreanVoice = () => {
    if (!("speechSynthesis" in window)) return null;
    return speechSynthesis.getVoices().find((v) => v.lang && v.lang.toLowerCase().startsWith("ko")) || null;
  };
  audio.addEventListener("ended", done);
  audio.addEventListener("error", () => { done(); if (button.dataset.mode === "server") alert(button.dataset.unavailable); });
  button.addEventListener("click", () => {
    if (button.dataset.playing) {
      if ("speechSynthesis" in window) speechSynthesis.cancel();
      audio.pause();
      done();
      return;
    }
    const voice = koreanVoice();
    if (voice) {
      button.dataset.mode = "browser";
      const utterance = new SpeechSynthesisUtterance(text.textContent);
      utterance.voice = voice;
      utterance.lang = voice.lang;
      utterance.onend = done;
      speechSynthesis.speak(utterance);
    } else if (button.dataset.server === "1") {
      button.dataset.mode = "server";
      if (!audio.src) audio.src = button.dataset.wav;
      audio.play().catch(() => {}); // a refused autoplay still leaves the audio loaded
    } else {
      alert(button.dataset.unavailable);
      return;
    }
    button.dataset.playing = "1";
    button.textContent = button.dataset.stop;
  });
}

// Dictate the diary, appending to the text: with the browser's own speech recognition where it
// works, else by recording in the browser and transcribing on the server (when it has a model).
// A browser recogniser that cannot reach its speech service, or cannot hear through it, hands over to
// the server (if the microphone is really missing, the recording then says so).
const HAND_OVER = new Set(["network", "service-not-allowed", "language-not-supported", "audio-capture"]);

function setUpDictation(text) {
  const button = document.getElementById("speak");
  const status = document.getElementById("speak-status");
  if (!button || !status || !text) return;
  const Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
  const server = button.dataset.server === "1" && navigator.mediaDevices && "MediaRecorder" in window;
  const say = (message) => { status.textContent = message; status.hidden = false; };
  if (!Recognition && !server) {
    button.disabled = true;
    say(button.dataset.unavailable);
    return;
  }
  const label = button.textContent;
  const append = (words) => {
    text.value = (text.value ? text.value.trimEnd() + " " : "") + words;
    text.dispatchEvent(new Event("input")); // keeps the draft
  };
  button.dataset.mode = Recognition ? "browser" : "server";
  let recognition = null;
  let recorder = null;
  let handOver = false;

  const transcribe = async (blob) => {
    button.disabled = true;
    say(button.dataset.transcribing);
    const form = new FormData();
    form.append("audio", blob, "dictation.webm");
    form.append("lang", button.lang);
    form.append("csrf", button.form.elements.csrf.value);
    try {
      const reply = await fetch("/api/dictation", { method: "POST", body: form, credentials: "same-origin" });
      const body = await reply.json().catch(() => ({}));
      if (!reply.ok) throw new Error(body.message || reply.status);
      if (body.text) {
        append(body.text);
        status.hidden = true;
      } else {
        say(button.dataset.nothing);
      }
    } catch (error) {
      say(`${button.dataset.failed}: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  };

  const record = async () => {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      say(`${button.dataset.failed}: ${error.name}`);
      return;
    }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    const limit = setTimeout(() => recorder && recorder.stop(), Number(button.dataset.maxSeconds) * 1000);
    recorder.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
    recorder.onstop = () => {
      clearTimeout(limit);
      stream.getTracks().forEach((track) => track.stop());
      const type = recorder.mimeType;
      recorder = null;
      button.textContent = label;
      transcribe(new Blob(chunks, { type }));
    };
    recorder.start();
    button.textContent = button.dataset.stop;
    say(button.dataset.recording);
  };

  const listen = () => {
    recognition = new Recognition();
    recognition.lang = button.lang === "en" ? "en-US" : "ko-KR";
    recognition.continuous = true;
    recognition.interimResults = false;
    recognition.onresult = (event) => {
      for (let i = event.resultIndex; i < event.results.length; i += 1) {
        if (!event.results[i].isFinal) continue;
        const words = event.results[i][0].transcript.trim();
        if (words) append(words);
      }
    };
    recognition.onerror = (event) => {
      if (server && HAND_OVER.has(event.error)) {
        handOver = true;
        return;
      }
      say(`${button.dataset.failed}: ${event.error}`);
    };
    recognition.onend = () => {
      recognition = null;
      button.textContent = label;
      if (handOver) {
        button.dataset.mode = "server";
        record();
      }
    };
    button.textContent = button.dataset.stop;
    status.hidden = true;
    recognition.start();
  };

  button.addEventListener("click", () => {
    if (recognition) recognition.stop();
    else if (recorder) recorder.stop();
    else if (button.dataset.mode === "server") record();
    else listen();
  });
}
