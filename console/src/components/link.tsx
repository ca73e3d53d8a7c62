import type { ComponentChildren } from 'preact';
import { linkHandler } from '../router';

export function Link(props: { href: string; children: ComponentChildren; class?: string; title?: string; 'aria-current'?: 'page' | undefined }) {
  return (
    <a href={props.href} class={props.class} title={props.title} aria-current={props['aria-current']} onClick={linkHandler}>
      {props.children}
    </a>
  );
}
