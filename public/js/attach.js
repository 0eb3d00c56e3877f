// Sharing files: the attach button, a file dropped on the conversation, or
// an image pasted into the message box. Each file is one upload
// (POST /api/rooms/ID/files) and becomes a chat message, which arrives over
// the socket like any other; the text in the box, if any, goes with it.
// XMLHttpRequest rather than fetch, for its upload progress.

/** "2.4 MB", "512 kB", "300 bytes": a size as people read it. */
export function humanSize(bytes) {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${Math.round(bytes / 1e3)} kB`;
  return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
}

export class Attachments {
  /**
   * `elements`: the file input, the attach button, the message box, the
   * progress bar and its words, and the area files may be dropped on;
   * `maxBytes` the largest file the server takes; `room()` the room to
   * share in; `say(words)` shows a problem.
   */
  constructor({ input, button, box, progress, status, dropZone, maxBytes, room, say }) {
    Object.assign(this, { input, button, box, progress, status, dropZone, maxBytes, room, say });
    this.queue = [];
    this.busy = false;
    button.addEventListener('click', () => input.click());
    input.addEventListener('change', () => {
      this.share([...input.files]);
      input.value = '';
    });
    box.addEventListener('paste', (e) => {
      const files = [...(e.clipboardData?.files || [])];
      if (files.length === 0) return;
      e.preventDefault();
      this.share(files);
    });
    const carriesFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
    dropZone.addEventListener('dragover', (e) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
      dropZone.classList.add('dropping');
    });
    dropZone.addEventListener('dragleave', (e) => {
      if (!dropZone.contains(e.relatedTarget)) dropZone.classList.remove('dropping');
    });
    dropZone.addEventListener('drop', (e) => {
      dropZone.classList.remove('dropping');
      if (!carriesFiles(e)) return;
      e.preventDefault();
      this.share([...e.dataTransfer.files]);
    });
  }

  /** Uploads the files one after another. */
  share(files) {
    this.queue.push(...files);
    if (!this.busy) this.next();
  }

  async next() {
    const file = this.queue.shift();
    if (!file) {
      this.busy = false;
      return;
    }
    this.busy = true;
    try {
      await this.upload(file);
    } finally {
      this.next();
    }
  }

  upload(file) {
    // A pasted screenshot has a name like "image.png"; give it one if not.
    const name = file.name || `pasted.${(file.type.split('/')[1] || 'bin')}`;
    // Refused here rather than after sending it all (the server would too).
    if (this.maxBytes && file.size > this.maxBytes) {
      this.say(`${name} was not shared: a file may be at most ${humanSize(this.maxBytes)}.`);
      return Promise.resolve();
    }
    if (file.size === 0) {
      this.say(`${name} was not shared: it is empty.`);
      return Promise.resolve();
    }
    const body = new FormData();
    body.append('file', file, name);
    const caption = this.box.value.trim();
    if (caption) body.append('message', caption);
    this.progress.value = 0;
    this.progress.hidden = false;
    this.status.textContent = `Uploading ${name}…`;
    this.button.disabled = true;
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', `/api/rooms/${this.room()}/files`);
      xhr.responseType = 'json';
      xhr.upload.addEventListener('progress', (e) => {
        if (!e.lengthComputable) return;
        const percent = Math.round((e.loaded / e.total) * 100);
        this.progress.value = percent;
        this.status.textContent = `Uploading ${name}… ${percent}%`;
      });
      const done = (problem) => {
        this.progress.hidden = true;
        this.button.disabled = false;
        this.status.textContent = problem ? '' : `${name} shared.`;
        if (problem) this.say(problem);
        resolve();
      };
      xhr.addEventListener('load', () => {
        if (xhr.status === 201) {
          if (caption && this.box.value.trim() === caption) this.box.value = '';
          done(null);
        } else {
          const said = xhr.response && xhr.response.error;
          done(`${name} was not shared: ${said || `the server answered ${xhr.status}.`}`);
        }
      });
      xhr.addEventListener('error', () => done(`${name} was not shared: the connection failed.`));
      xhr.send(body);
    });
  }
}

/** A message's files: thumbnails that open the image, names with sizes. */
export function renderFiles(files) {
  const box = document.createElement('div');
  box.className = 'files';
  for (const file of files) {
    const link = document.createElement('a');
    link.href = file.url;
    if (file.thumbnail) {
      link.className = 'file-image';
      link.target = '_blank';
      link.rel = 'noopener';
      link.title = `${file.name} (${humanSize(file.size)}), opens the full image`;
      const img = document.createElement('img');
      img.src = file.thumbnail;
      img.alt = file.name;
      img.loading = 'lazy';
      // The thumbnail's own size (within 400 × 400), so nothing jumps as it loads.
      const scale = Math.min(1, 400 / file.width, 400 / file.height);
      img.width = Math.max(1, Math.round(file.width * scale));
      img.height = Math.max(1, Math.round(file.height * scale));
      link.append(img);
    } else {
      link.className = 'file';
      link.download = file.name;
      const name = document.createElement('span');
      name.className = 'file-name';
      name.textContent = file.name;
      const size = document.createElement('span');
      size.className = 'file-size';
      size.textContent = humanSize(file.size);
      link.append(name, ' ', size);
    }
    box.append(link);
  }
  return box;
}
