//! The frame every page shares: skip link, header with the store's name, search and account
//! links, the main landmark, and the footer.

use maud::{DOCTYPE, Markup, html};

use super::Shopper;

pub fn page(shop: &Shopper, title: &str, main: Markup) -> Markup {
    let name = shop.display_name();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (name) }
                link rel="stylesheet" href="/assets/storefront.css";
                link rel="stylesheet" href="/assets/theme.css";
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="site" {
                    div class="bar" {
                        a class="brand" href="/" { (name) }
                        form class="search" role="search" action="/search" method="get" {
                            label for="site-q" class="visually-hidden" { "Search products" }
                            input type="search" id="site-q" name="q" placeholder="Search products";
                            button type="submit" { "Search" }
                        }
                        nav aria-label="Account" {
                            ul {
                                li { a href="/cart" { "Cart" } }
                                @if shop.session.is_some() {
                                    li { a href="/account" { "Account" } }
                                    li {
                                        form method="post" action="/signout" class="inline" {
                                            (shop.csrf_field())
                                            button type="submit" class="link" { "Sign out" }
                                        }
                                    }
                                } @else {
                                    li { a href="/signin" { "Sign in" } }
                                    li { a href="/register" { "Register" } }
                                }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (main) }
                footer class="site" { p { (name) " · shop powered by Emporium" } }
            }
        }
    }
}

/// An error or notice box; screen readers announce it.
pub fn alert(message: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = message {
            p class="alert" role="alert" { (m) }
        }
    }
}
