/* Intrusive doubly-linked list (the Linux kernel's shape): objects embed a
 * struct list_head and are recovered with container_of. */
#ifndef UT_UTIL_LIST_H
#define UT_UTIL_LIST_H

#include <stddef.h>
#include <stdbool.h>

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#endif

struct list_head {
	struct list_head *next, *prev;
};

#define LIST_HEAD_INIT(name) { &(name), &(name) }

static inline void list_init(struct list_head *h)
{
	h->next = h;
	h->prev = h;
}

static inline bool list_empty(const struct list_head *h)
{
	return h->next == h;
}

static inline void list__insert(struct list_head *n, struct list_head *prev,
				struct list_head *next)
{
	next->prev = n;
	n->next = next;
	n->prev = prev;
	prev->next = n;
}

static inline void list_add(struct list_head *n, struct list_head *h)
{
	list__insert(n, h, h->next);
}

static inline void list_add_tail(struct list_head *n, struct list_head *h)
{
	list__insert(n, h->prev, h);
}

/* Unlinks and re-initialises, so a second list_del is harmless. */
static inline void list_del(struct list_head *n)
{
	n->next->prev = n->prev;
	n->prev->next = n->next;
	list_init(n);
}

/* True when n is linked into some list (after list_init / list_del it is not). */
static inline bool list_linked(const struct list_head *n)
{
	return n->next != n;
}

#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first_entry(h, type, member) list_entry((h)->next, type, member)

#define list_for_each_entry(pos, h, member)                                   \
	for (pos = list_entry((h)->next, __typeof__(*pos), member);          \
	     &pos->member != (h);                                             \
	     pos = list_entry(pos->member.next, __typeof__(*pos), member))

#define list_for_each_entry_safe(pos, n, h, member)                           \
	for (pos = list_entry((h)->next, __typeof__(*pos), member),          \
	     n = list_entry(pos->member.next, __typeof__(*pos), member);      \
	     &pos->member != (h);                                             \
	     pos = n, n = list_entry(n->member.next, __typeof__(*n), member))

#endif
