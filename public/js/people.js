// Who is here: the users with a tab open, sorted without regard to case,
// with their number. Set whole on connect (`online users`), then kept by
// each join and leave; a change moves one item, so thousands stay cheap.
// Each name but one's own is a button that starts a direct conversation
// (`onMessage`); the names also fill the suggestions of the fields that
// take usernames (a <datalist>, filled when such a field is shown).

const collator = new Intl.Collator(undefined, { sensitivity: 'base' });

export class People {
  constructor(list, count, me, { hint, onMessage }) {
    this.list = list;
    this.count = count;
    this.me = me.toLowerCase();
    this.hint = hint;
    this.onMessage = onMessage;
    /** Sorted names, and their items. */
    this.names = [];
    this.items = new Map();
  }

  /** The whole list, as the server sent it on connect. */
  reset(names) {
    this.names = [...names].sort(collator.compare);
    this.items.clear();
    this.list.replaceChildren(...this.names.map((name) => this.item(name)));
    this.updateCount();
  }

  join(name) {
    if (this.items.has(name.toLowerCase())) return;
    const at = this.position(name);
    this.names.splice(at, 0, name);
    const item = this.item(name);
    this.list.insertBefore(item, this.list.children[at] || null);
    this.updateCount();
  }

  leave(name) {
    const item = this.items.get(name.toLowerCase());
    if (!item) return;
    item.remove();
    this.items.delete(name.toLowerCase());
    this.names = this.names.filter((n) => n.toLowerCase() !== name.toLowerCase());
    this.updateCount();
  }

  /** Where `name` goes in the sorted list (binary search). */
  position(name) {
    let low = 0;
    let high = this.names.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (collator.compare(this.names[mid], name) < 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  isOnline(name) {
    return this.items.has(name.toLowerCase());
  }

  item(name) {
    const item = document.createElement('li');
    if (name.toLowerCase() === this.me) {
      item.textContent = name;
      item.className = 'me';
      const you = document.createElement('span');
      you.className = 'you';
      you.textContent = ' (you)';
      item.append(you);
    } else {
      // The name is the button's whole visible text and name; what it does
      // is its description (read after the name).
      const person = document.createElement('button');
      person.type = 'button';
      person.className = 'person';
      person.dataset.username = name;
      person.textContent = name;
      person.title = `Write to ${name} directly`;
      if (this.hint) person.setAttribute('aria-describedby', this.hint.id);
      person.addEventListener('click', () => this.onMessage(name));
      item.append(person);
    }
    this.items.set(name.toLowerCase(), item);
    return item;
  }

  updateCount() {
    this.count.textContent = String(this.names.length);
  }

  /** Fills a <datalist> with the others who are here. */
  suggest(datalist) {
    const others = this.names.filter((name) => name.toLowerCase() !== this.me);
    datalist.replaceChildren(...others.map((name) => {
      const option = document.createElement('option');
      option.value = name;
      return option;
    }));
  }
}
