/* SPDX-License-Identifier: MIT */
/*
 * list.h — intrusive circular doubly linked list. A node not on any list has
 * next == NULL (weft__list_linked tells); a head points to itself when empty.
 */
#ifndef WEFT_BASE_LIST_H
#define WEFT_BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct weft__list {
    struct weft__list *next, *prev;
} weft__list;

static inline void weft__list_init(weft__list *head)
{
    head->next = head->prev = head;
}

static inline bool weft__list_empty(const weft__list *head)
{
    return head->next == head;
}

static inline bool weft__list_linked(const weft__list *node)
{
    return node->next != NULL;
}

static inline void weft__list_push_back(weft__list *head, weft__list *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

static inline void weft__list_remove(weft__list *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node->prev = NULL;
}

static inline weft__list *weft__list_pop_front(weft__list *head)
{
    if (weft__list_empty(head))
        return NULL;
    weft__list *n = head->next;
    weft__list_remove(n);
    return n;
}

#define weft__list_for_each(pos, head) \
    for (weft__list *pos = (head)->next; pos != (head); pos = pos->next)

#endif
