// maeum diary: webcam capture into the upload field, and a draft of the diary text kept in
// this browser until the entry is saved (so an expired session or a refused photo loses nothing).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const clear = document.body.dataset.clearDraft;
  if (clear) localStorage.removeItem(clear);

  const text = document.querySelector("textarea[data-draft]");
  if (text) {
    const key = text.dataset.draft;
    const saved = localStorage.getItem(key);
    if (saved && !text.value) text.value = saved;
    text.addEventListener("input", () => localStorage.setItem(key, text.value));
  }

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
