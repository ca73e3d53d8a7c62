import { Link } from './link';

/**
 * A badge in a list that needs explaining (an erasure, a recording unreadable here): a link to the page that explains
 * it, so that a keyboard or a touch reaches the explanation too (the title, which only a mouse's hover shows, is also
 * the link's accessible description).
 */
export function FlagLink({ href, label, summary }: { href: string; label: string; summary: string }) {
  return (
    <Link href={href} class="flag deny" title={summary}>
      {label}
    </Link>
  );
}
